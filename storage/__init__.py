"""Tidegate storage: the log and its engines (embedded files, Redis Streams)."""

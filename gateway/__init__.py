"""Tidegate HTTP/WebSocket gateway."""

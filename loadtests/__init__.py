"""Locust files and benchmark drivers; they use the public API only."""

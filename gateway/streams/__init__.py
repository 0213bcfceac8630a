"""Live streams: a topic followed over WebSocket or Server-Sent Events."""

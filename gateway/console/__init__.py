"""The web console: the static files of `web/` served at `/console/`, with their headers."""

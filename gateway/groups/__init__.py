"""Consumer groups over HTTP: membership, group fetch with cursors, commits, lag, admin."""

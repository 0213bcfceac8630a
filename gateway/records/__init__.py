"""Records: produce, fetch and long-poll, with their codecs, partitioner and idempotency."""

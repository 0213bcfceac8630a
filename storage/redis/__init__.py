"""The Redis Streams engine (scale-out): partitions as streams, state in Redis."""

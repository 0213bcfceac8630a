"""Which partition a record goes to, exactly as Kafka's Java producer decides.

An explicit partition wins; a key picks `toPositive(murmur2(key)) % partitions`
(Kafka's `BuiltInPartitioner.partitionForKey`), so a key lands where a Kafka
producer would put it; a record with neither is spread round-robin per topic
(an idempotent request's keyless records round from a start its identity
fixes, `RoundRobin.starting_at`, so a retry places them alike). Pure: no I/O,
no clock.
"""

from __future__ import annotations

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's `Utils.murmur2`: 32-bit MurmurHash2, returned as a signed Java int."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    end = length - (length & 3)
    for i in range(0, end, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = (h * _M) & _MASK
        h ^= k
    rest = length & 3
    if rest == 3:
        h ^= data[end + 2] << 16
    if rest >= 2:
        h ^= data[end + 1] << 8
    if rest >= 1:
        h ^= data[end]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def to_positive(n: int) -> int:
    """Kafka's `Utils.toPositive`: clear the sign bit (not abs(), which differs)."""
    return n & 0x7FFFFFFF


def partition_for_key(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner assigns to `key`."""
    return to_positive(murmur2(key)) % partitions


class RoundRobin:
    """Spreads keyless records evenly over a topic's partitions, one counter per topic.

    The counters live in memory; after a restart or on another gateway the
    sequence restarts, which keeps the spread even without shared state.
    """

    def __init__(self, *, max_topics: int = 100_000) -> None:
        self._counters: dict[str, int] = {}
        self._max_topics = max_topics

    @classmethod
    def starting_at(cls, topic: str, start: int) -> RoundRobin:
        """A round for one request, from `start` on: what an idempotent request's
        keyless records draw from, so that its retry places them as it did."""
        one = cls(max_topics=1)
        one._counters[topic] = start
        return one

    def next(self, topic: str, partitions: int) -> int:
        start = self.peek(topic)
        self.advance(topic, 1)
        return start % partitions

    def peek(self, topic: str) -> int:
        """The topic's counter: the next keyless record goes to `peek() % partitions`."""
        return self._counters.get(topic, 0)

    def advance(self, topic: str, drawn: int) -> None:
        """Count `drawn` keyless records placed from `peek()` on (the C fast path's)."""
        if topic not in self._counters and len(self._counters) >= self._max_topics:
            self._counters.clear()  # bounded memory; evenness survives a reset
        self._counters[topic] = self._counters.get(topic, 0) + drawn

    def forget(self, topic: str) -> None:
        self._counters.pop(topic, None)


def choose_partition(
    *,
    explicit: int | None,
    key: bytes | None,
    partitions: int,
    topic: str,
    round_robin: RoundRobin,
) -> int:
    """Explicit partition, else the key's partition, else the next round-robin one
    (a topic of one partition draws nothing from its counter)."""
    if explicit is not None:
        return explicit
    if partitions == 1:
        return 0
    if key is not None:
        return partition_for_key(key, partitions)
    return round_robin.next(topic, partitions)

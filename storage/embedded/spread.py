"""One request's batches for several partitions, grouped by the writer of each.

A keyed append brings a batch for most of a topic's partitions, and each shard
gets one item holding its part (`shard.SpreadAppend`), so this runs once per
partition of every such request. `by_shard` is the reference; `spread` is its
C twin (`_framing.c`) when that is built, held to it by
tests/storage/test_spread.py (also under `make sanitize`). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from storage.records import PackedRecords

MAX_COUNT = 2**32 - 1  # a batch header's record count is 32 bits (codec.py)
MIN_TS, MAX_TS = -(2**63), 2**63 - 1  # and its timestamps 64

P = TypeVar("P")
S = TypeVar("S")

Spread = list[tuple[S, list[P], list[PackedRecords], list[int]]]
"""Each shard's part: (the shard, its partitions, their packed records, the index of
each in the request's batches), shards in order of first appearance."""


def by_shard(
    batches: Sequence[tuple[int, PackedRecords]],
    partitions: list[P],
    shards: list[S],
    limit: int,
) -> Spread[S, P] | None:
    """`batches` grouped by `shards[partition]`, or None unless every batch is plainly
    storable: its partition within `partitions` and named once, 1 to `MAX_COUNT`
    records, at most `limit` bytes of them, timestamps within 64 bits. On None the
    caller finds out what is wrong (or measures each record against the limit)."""
    seen: set[int] = set()
    groups: dict[int, tuple[S, list[P], list[PackedRecords], list[int]]] = {}
    count = len(partitions)
    for i, (p, packed) in enumerate(batches):
        data, records, first, last = packed
        if (
            not 0 <= p < count
            or p in seen
            or not 0 < records <= MAX_COUNT
            or len(data) > limit
            or not (MIN_TS <= first <= MAX_TS and MIN_TS <= last <= MAX_TS)
        ):
            return None
        seen.add(p)
        shard = shards[p]
        group = groups.get(id(shard))
        if group is None:
            group = groups[id(shard)] = (shard, [], [], [])
        group[1].append(partitions[p])
        group[2].append(packed)
        group[3].append(i)
    return list(groups.values())


try:
    from storage.embedded._framing import spread as spread
except ImportError:  # installed without a compiler: the reference spreads
    spread = by_shard
"""`by_shard`, by its C twin when that is built (which also answers None for what it
does not mean to handle: batches that are not a list or tuple of pairs of an int
and a `PackedRecords` of bytes and ints, or more than 64 shards in one request)."""

"""A writer pass's keyed entries grouped, framed as stamped batches, and answered.

A keyed append reaches a writer as one `shard.SpreadAppend` per shard, and a pass
holds many of them, so it has a few entries (one request's records for one
partition) for each of its partitions. The pass groups the entries by partition;
for every partition it joins its entries' records into batches, frames each
(header and CRC), stamps them with consecutive base offsets and notes each
entry's first offset; once they are committed each entry gets its
`AppendResult`. All three run once for every entry of
every keyed request, so each is one call (per request for the grouping, over the
whole pass for the others): `group_entries`, `frame_entries` and `answer_entries`
here are the reference, and `_framing.c` has their twins (`group_pass`,
`frame_pass`, `answer_pass`), held to them by tests/storage/test_passes.py (also
under `make sanitize`). Pure: no I/O, nothing but its arguments touched.

An entry is a tuple whose first item is its `PackedRecords` and whose second
and third say where its outcome goes: `entry[1][entry[2]] = outcome` (the
request's `Joined.results` and its slot there); what follows is the caller's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from storage.embedded.codec import frame_batch
from storage.embedded.spread import MAX_COUNT, MAX_TS, MIN_TS
from storage.records import AppendResult, PackedRecords

Entry = tuple[PackedRecords, list[Any], int, Any]
"""(its records, the list its outcome goes into, its place in that list, the caller's)."""

Framed = tuple[bytes, list[tuple[int, int, int, int]], list[int]]
"""A partition's entries framed: its batches back to back, stamped; each batch's (base
offset, record count, max timestamp, size); each entry's first offset."""


def frame_entries(
    groups: Sequence[Sequence[Entry]], bases: Sequence[int], merged: int
) -> list[Framed]:
    """For each partition `k`, the records of `groups[k]`'s entries, in order, framed
    as batches of at most `merged` bytes of records each (consecutive entries
    joined; an entry larger than that is a batch of its own) stamped with
    consecutive base offsets from `bases[k]`. Raises ValueError for an entry of no
    records or more than `MAX_COUNT`, a timestamp past 64 bits, a batch of more than
    `MAX_COUNT` records, or offsets past 2**63 - 1 (the writer's own numbers never
    are; the checks say what the C twin refuses)."""
    return [_framed(entries, base, merged) for entries, base in zip(groups, bases, strict=True)]


def _framed(entries: Sequence[Entry], base: int, merged: int) -> Framed:
    _check(entries, base)
    parts: list[bytes] = []
    placed: list[tuple[int, int, int, int]] = []
    starts: list[int] = []
    pieces: list[list[PackedRecords]] = []
    size = 0
    for entry in entries:
        length = len(entry[0][0])
        if not pieces or (pieces[-1] and size + length > merged):
            pieces.append([])
            size = 0
        pieces[-1].append(entry[0])
        size += length
    offset = base
    for packs in pieces:
        count = sum(p[1] for p in packs)
        if count > MAX_COUNT:
            raise ValueError("record count out of range for a batch")
        piece = PackedRecords(
            b"".join(p[0] for p in packs), count, packs[0][2], max(p[3] for p in packs)
        )
        batch = frame_batch(piece, base_offset=offset)
        placed.append((offset, count, piece.max_timestamp, len(batch)))
        parts.append(batch)
        for p in packs:
            starts.append(offset)
            offset += p[1]
    return b"".join(parts), placed, starts


def _check(entries: Sequence[Entry], base: int) -> None:
    if not 0 <= base <= MAX_TS:
        raise ValueError("base offset out of range")
    total = 0
    for entry in entries:
        _, count, first, last = entry[0]
        if not (0 < count <= MAX_COUNT and MIN_TS <= first <= MAX_TS and MIN_TS <= last <= MAX_TS):
            raise ValueError("records out of range for a batch")
        total += count
    if base + total > MAX_TS:
        raise ValueError("offsets out of range")


def group_entries(
    groups: dict[Any, list[Entry]],
    keys: Sequence[Any],
    packs: Sequence[PackedRecords],
    results: list[Any],
    slots: Sequence[int],
    item: Any,
) -> None:
    """One queue item's entries onto their partitions' lists: entry `i`,
    `(packs[i], results, slots[i], item)`, appended to `groups[keys[i]]` (a new list
    for a key not there yet), in order. The writer calls it once for each keyed
    request of a pass, which has an entry for most of a topic's partitions."""
    if not len(keys) == len(packs) == len(slots):
        raise ValueError("as many keys, packs and slots")
    for key, packed, slot in zip(keys, packs, slots, strict=True):
        entry = (packed, results, slot, item)
        found = groups.get(key)
        if found is None:
            groups[key] = [entry]
        else:
            found.append(entry)


def answer_entries(
    result_type: type[AppendResult],
    numbers: Sequence[int],
    groups: Sequence[Sequence[Entry]],
    starts: Sequence[Sequence[int]],
) -> None:
    """Each entry `j` of partition `numbers[k]` answered with its records' offsets from
    `starts[k][j]`: `entry[1][entry[2]] = AppendResult(number, start, count, first
    timestamp)` (`result_type` is `AppendResult`, passed in as the C twin needs it)."""
    if not len(numbers) == len(groups) == len(starts):
        raise ValueError("as many numbers and starts as partitions")
    for number, entries, firsts in zip(numbers, groups, starts, strict=True):
        if len(entries) != len(firsts):
            raise ValueError("a start for each entry")
        for entry, start in zip(entries, firsts, strict=True):
            packed, results, slot = entry[0], entry[1], entry[2]
            if not 0 <= slot < len(results):
                raise IndexError("an entry's slot is outside its results")
            results[slot] = result_type(number, start, packed[1], packed[2], False)


try:
    from storage.embedded._framing import answer_pass as answer_pass
    from storage.embedded._framing import frame_pass as frame_pass
    from storage.embedded._framing import group_pass as group_pass
except ImportError:  # installed without a compiler: the reference groups, frames and answers
    group_pass = group_entries
    frame_pass = frame_entries
    answer_pass = answer_entries

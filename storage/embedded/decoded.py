"""Recently decoded batches, kept for the next reader of the same batch.

In Python, decoding is most of what a read costs (a CRC check, then a struct
unpack, two slices and a tuple per record), while the bytes themselves come
from the page cache. Readers of a busy partition read the same recent batches:
every consumer group, every live stream, every retry. So a batch is decoded
once, after its CRC and its place in the offset chain were checked, and later
reads of it take the records from here. Those reads still copy the stored
batch from the file and check it (see below), so damage on disk is reported
as before; only the decoding is skipped.

An entry also remembers where its batch lies (segment and position), as the
read that checked it found it: a later read of the same offsets goes straight
there instead of walking the index and the offset chain again, and believes
the stored bytes only if they still name the same base offset and length and
still match their CRC (else it takes the long way, which reports the damage).

Entries are keyed by the partition's instance (a token drawn when it opens, so
a deleted and re-created topic never sees the old one's records) and the
batch's base offset; batches are never rewritten in place, so an entry can
only go stale by being deleted, and a read checks the partition's offset range
before it looks here. The cache is bounded by the stored bytes of the batches
it holds and forgets the least recently read first. An entry holds its
batch's checked bytes as well as its records, so the memory it takes is about
twice the stored bytes it is counted as, plus the record objects.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from collections.abc import Sequence
from operator import itemgetter
from typing import NamedTuple

from storage.records import Record

DEFAULT_BUDGET_BYTES = 64 * 1024 * 1024

_tokens = itertools.count(1)


def partition_token() -> int:
    """A number no other partition instance of this process holds."""
    return next(_tokens)


Key = tuple[int, int]  # partition token, base offset

_KEY_OF, _VALUE_OF, _HEADERS_OF = itemgetter(2), itemgetter(3), itemgetter(4)


def payload_of(records: Sequence[Record]) -> int | None:
    """The summed payload bytes (what a fetch's max_bytes counts) of header-less
    records, counted in C; None if any record has headers (count those one by one)."""
    if any(map(_HEADERS_OF, records)):
        return None
    values = sum(map(len, filter(None, map(_VALUE_OF, records))))
    return values + sum(map(len, filter(None, map(_KEY_OF, records))))


class Decoded(NamedTuple):
    """A whole checked batch: its records, their payload (`payload_of`) counted once,
    where the batch is stored (the base offset of its segment, its position in the
    segment file and its size there, header included) and the stored bytes that
    passed the CRC (`raw`, what a later read compares the file's bytes with)."""

    records: tuple[Record, ...]
    payload: int | None
    segment: int
    position: int
    size: int
    raw: bytes

    @classmethod
    def of(cls, records: Sequence[Record], segment: int, position: int, raw: bytes) -> Decoded:
        return cls(tuple(records), payload_of(records), segment, position, len(raw), raw)


class DecodedBatches:
    """An LRU of whole decoded batches, bounded by their stored sizes in bytes."""

    def __init__(self, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        if budget_bytes < 0:
            raise ValueError("budget_bytes must not be negative")
        self.budget_bytes = budget_bytes
        self.held_bytes = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[Key, Decoded] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: int, base_offset: int) -> Decoded | None:
        key = (token, base_offset)
        with self._lock:
            hit = self._entries.get(key)
            if hit is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return hit

    def run(self, token: int, offset: int, end: int, room: int, budget: int) -> list[Decoded]:
        """The cached batches from `offset` on, back to back in one segment file,
        before `end`, as many as fit `room` records and `budget` payload bytes
        (empty when the first is not cached, has headers, or does not fit)."""
        run: list[Decoded] = []
        count = payload = 0
        at = offset
        with self._lock:
            entries = self._entries
            while at < end and count < room:
                key = (token, at)
                hit = entries.get(key)
                if hit is None or hit.payload is None:
                    break
                n = len(hit.records)
                if count + n > room or payload + hit.payload > budget or at + n > end:
                    break
                if run:
                    last = run[-1]
                    if hit.segment != last.segment or hit.position != last.position + last.size:
                        break
                entries.move_to_end(key)
                run.append(hit)
                count += n
                payload += hit.payload
                at += n
            self.hits += len(run)
            self.misses += not run
        return run

    def put(self, token: int, base_offset: int, batch: Decoded) -> None:
        """Keep a whole batch (every record, from `base_offset` on), checked and decoded."""
        if batch.size > self.budget_bytes:
            return
        key = (token, base_offset)
        with self._lock:
            held = self._entries.pop(key, None)
            if held is not None:
                self.held_bytes -= held.size
            self._entries[key] = batch
            self.held_bytes += batch.size
            while self.held_bytes > self.budget_bytes:
                _key, evicted = self._entries.popitem(last=False)
                self.held_bytes -= evicted.size

    def forget(self, token: int) -> None:
        """Drop every batch of one partition instance (its topic was deleted)."""
        with self._lock:
            for key in [k for k in self._entries if k[0] == token]:
                self.held_bytes -= self._entries.pop(key).size

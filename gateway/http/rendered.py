"""Records rendered as JSON once for every reader of the same records: the records
part of fetch replies, and live streams' frames.

Readers of a busy partition read the same recent records: each consumer group,
each live feed in a browser, each retry. Rendering a hundred records is most of
what such a fetch costs once the log serves them from its decoded cache, so the
rendered `{"records":[...]` part of a reply is kept and the next reply of the
same records adds only its own `next_offset` and `end_offset`.

An entry is found by the identity of the first and last record objects and
the count, and kept with those two objects, so their ids cannot be reused
while it lives. The log hands out the same record objects for the same stored
records of one partition instance (its decoded cache), a run of records has
no gaps, and stored records never change: the same first and last objects and
count mean the same records. The partition number and the value format are
part of the key, since both are part of the JSON. Bounded by the rendered
bytes held; the least recently used goes first. Used on the event loop only.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from storage.records import Record

_Key = tuple[int, int, int, int, int]  # id of first and last record, count, partition, format
R = TypeVar("R", bytes, str)


class RenderedRecords(Generic[R]):
    """An LRU of rendered record runs (bytes, or text for WebSocket frames), bounded
    by their length (0 keeps nothing)."""

    def __init__(self, budget_bytes: int) -> None:
        if budget_bytes < 0:
            raise ValueError("budget_bytes must not be negative")
        self.budget_bytes = budget_bytes
        self.held_bytes = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[_Key, tuple[Record, Record, R]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def head(
        self,
        records: Sequence[Record],
        partition: int,
        fmt: int,
        render: Callable[[Sequence[Record]], R],
    ) -> R:
        """`render(records)`, from the cache when these records were rendered before."""
        if not records or not self.budget_bytes:
            return render(records)
        first, last = records[0], records[-1]
        key = (id(first), id(last), len(records), partition, fmt)
        held = self._entries.get(key)
        if held is not None and held[0] is first and held[1] is last:
            self._entries.move_to_end(key)
            self.hits += 1
            return held[2]
        self.misses += 1
        rendered = render(records)
        if len(rendered) <= self.budget_bytes:
            replaced = self._entries.pop(key, None)
            if replaced is not None:
                self.held_bytes -= len(replaced[2])
            self._entries[key] = (first, last, rendered)
            self.held_bytes += len(rendered)
            while self.held_bytes > self.budget_bytes:
                _key, (_first, _last, evicted) = self._entries.popitem(last=False)
                self.held_bytes -= len(evicted)
        return rendered

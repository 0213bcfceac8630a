"""Reads of fetches woken by the same append, done once for all of them.

Two thousand long-polls parked at one position of one partition are woken by
one append, all in the same event-loop pass, and each then reads the same
records with the same bounds: one read serves them all. The read is kept
only until that pass ends, and only for fetches that were waiting, which is
what makes sharing it right: a woken fetch was waiting before the first of
them read (it found nothing at its position, and records only ever become
visible later), so the shared result, taken after the append became visible,
is what the log held at a moment within each of those requests. A fetch that
did not wait never takes it, so nobody reads older records than a write it
saw acknowledged.
"""

from __future__ import annotations

import asyncio

from storage.backend import LogStore
from storage.records import FetchResult

_Key = tuple[str, int, int, int, int]  # stored topic name, partition, offset, bounds


class WokenReads:
    """One read per (topic, partition, offset, bounds) among the fetches of one pass."""

    def __init__(self) -> None:
        self._reads: dict[_Key, tuple[LogStore, FetchResult]] = {}
        self.shared = 0  # reads answered from another fetch's (for tests and metrics)

    async def read(
        self,
        log: LogStore,
        name: str,
        partition: int,
        offset: int,
        *,
        max_records: int,
        max_bytes: int,
    ) -> FetchResult:
        key = (name, partition, offset, max_records, max_bytes)
        held = self._reads.get(key)
        if held is not None and held[0] is log:
            self.shared += 1
            return held[1]
        result = await log.read(
            name, partition, offset, max_records=max_records, max_bytes=max_bytes
        )
        if not self._reads:
            asyncio.get_running_loop().call_soon(self._reads.clear)
        self._reads[key] = (log, result)
        return result

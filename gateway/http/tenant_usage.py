"""What each tenant uses: stored topics, partitions and bytes, and traffic counters.

Stored figures come from the log (`list_topics` and `describe_topic` under
the tenant's prefix) and are cached for a second per tenant, so a busy
producer does not describe every topic on every request; the storage limit
is therefore enforced to within about a second of appends. Traffic counters
(requests, bytes produced and consumed, refusals) feed `/metrics` and
`/v1/usage`; they are per process.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field

from gateway.http.names import tenant_prefix
from storage.backend import LogStore
from storage.errors import TopicNotFound

STORED_CACHE_S = 1.0


@dataclass(frozen=True, slots=True)
class Stored:
    topics: int
    partitions: int
    bytes: int


@dataclass(slots=True)
class Meter:
    """Units per second over the last whole second: what `/v1/usage` shows as a rate."""

    second: int = 0
    current: int = 0
    previous: int = 0

    def add(self, units: int, now: float) -> None:
        self._roll(int(now))
        self.current += units

    def rate(self, now: float) -> int:
        self._roll(int(now))
        return self.previous

    def _roll(self, second: int) -> None:
        if second != self.second:
            self.previous = self.current if second == self.second + 1 else 0
            self.current = 0
            self.second = second


@dataclass(slots=True)
class Traffic:
    """One tenant's traffic through this process since it started."""

    requests: int = 0
    produced_bytes: int = 0
    produced_records: int = 0
    consumed_bytes: int = 0
    consumed_records: int = 0
    request_rate: Meter = field(default_factory=Meter)
    produce_rate: Meter = field(default_factory=Meter)
    consume_rate: Meter = field(default_factory=Meter)

    def request(self) -> None:
        self.requests += 1
        self.request_rate.add(1, time.monotonic())

    def produced(self, nbytes: int, records: int) -> None:
        self.produced_bytes += nbytes
        self.produced_records += records
        self.produce_rate.add(nbytes, time.monotonic())

    def consumed(self, nbytes: int, records: int) -> None:
        self.consumed_bytes += nbytes
        self.consumed_records += records
        self.consume_rate.add(nbytes, time.monotonic())


@dataclass
class TenantUsage:
    traffic: defaultdict[str, Traffic] = field(default_factory=lambda: defaultdict(Traffic))
    _stored: dict[str, tuple[float, Stored]] = field(default_factory=dict)

    async def counts(self, log: LogStore, namespace: str) -> Stored:
        """The tenant's topics and partitions, exact (cheap: no per-partition figures);
        `namespace` is its id (`Principal.namespace`)."""
        infos = await log.list_topics(prefix=tenant_prefix(namespace))
        return Stored(len(infos), sum(i.partitions for i in infos), 0)

    async def stored(self, log: LogStore, namespace: str, *, fresh: bool = False) -> Stored:
        """Topics, partitions and bytes on disk, at most a second old unless `fresh`."""
        now = time.monotonic()
        hit = self._stored.get(namespace)
        if hit is not None and not fresh and now - hit[0] < STORED_CACHE_S:
            return hit[1]
        infos = await log.list_topics(prefix=tenant_prefix(namespace))
        total = 0
        for info in infos:
            try:
                desc = await log.describe_topic(info.name)
            except TopicNotFound:
                continue  # deleted meanwhile
            total += sum(p.bytes for p in desc.partitions)
        figures = Stored(len(infos), sum(i.partitions for i in infos), total)
        if len(self._stored) > 100_000:
            self._stored.clear()
        self._stored[namespace] = (now, figures)
        return figures

    def forget(self, tenant: str) -> None:
        self._stored.pop(tenant, None)

"""Quota enforcement: which limit applies to what a tenant is about to do, and whether it fits.

Everything is keyed on the tenant of the verified principal, never on anything
the client sends. Rates (requests, produce bytes, consume bytes per second)
go through a `RateLimiter`: in-process by default, a Redis script when
gateways share Redis, so every gateway draws from one bucket. A refused
request is refused before it does anything, so a throttled produce appends
nothing. Consumption is only known after the read: the fetch first checks
that the bucket is not in debt, then charges what it served, so a tenant that
read beyond its rate waits until the debt is paid.

Count limits (topics, partitions, storage bytes, connections) are checked
against figures the caller supplies, because counting lives in storage,
which this layer does not import. A tenant's limits (plan plus overrides) are
cached for a moment and dropped at once when an operator changes them here.
When the cached limits expire, the requests in flight share one read of them
(many connections of one tenant would otherwise each start one, a thread hop
and a store read apiece, every time the entry expires).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from tenants.errors import LimitReached, QuotaExceeded
from tenants.plans import Limits
from tenants.ratelimit import Decision, RateLimiter

RATE_WINDOW_S = 1.0  # a bucket holds one second of its rate: bursts up to rate x 1 s
USAGE_READS_PER_SECOND = 5.0
"""Reads of a tenant's own usage, apart from its request rate (which they do not draw on)."""


@dataclass(frozen=True, slots=True)
class _CachedLimits:
    limits: Limits
    fetched_at: float


def limits_json(limits: Limits) -> dict[str, float | int | None]:
    """Every limit by name; None means unlimited."""
    return {f.name: getattr(limits, f.name) for f in dataclasses.fields(limits)}


def _retrieved(task: asyncio.Task[Limits]) -> None:
    """Mark a shared read's failure as seen even when every caller was cancelled."""
    if not task.cancelled():
        task.exception()


def burst_of(rate: float) -> float:
    """The bucket size for `rate` units per second: one window's worth, at least one unit."""
    return max(rate * RATE_WINDOW_S, 1.0)


def check_count(limit: str, current: int, adding: int, allowed: int | None) -> None:
    """LimitReached when `current + adding` would pass `allowed` (None: unlimited)."""
    if allowed is not None and adding > 0 and current + adding > allowed:
        raise LimitReached(limit, current, allowed)


class QuotaService:
    """Rates, connection counts and the limits of each tenant, for one gateway process."""

    def __init__(
        self,
        limits_of: Callable[[str], Awaitable[Limits]],
        limiter: RateLimiter,
        *,
        cache_ttl_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits_of = limits_of
        self._limiter = limiter
        self._cache_ttl_s = cache_ttl_s
        self._clock = clock
        self._cache: dict[str, _CachedLimits] = {}
        self._loading: dict[str, asyncio.Task[Limits]] = {}  # the read in flight, by tenant
        self._connections: dict[str, int] = {}
        self.throttled: dict[tuple[str, str], int] = {}

    async def limits(self, tenant: str) -> Limits:
        return self._cached(tenant) or await self._fetch_limits(tenant)

    def _cached(self, tenant: str) -> Limits | None:
        """The tenant's limits if cached and fresh, else None (a `Limits` is always
        truthy): the rate checks take them without awaiting, as most requests can."""
        hit = self._cache.get(tenant)
        if hit is not None and self._clock() - hit.fetched_at < self._cache_ttl_s:
            return hit.limits
        return None

    async def _fetch_limits(self, tenant: str) -> Limits:
        """The tenant's limits read from the directory; concurrent callers share the
        read in flight (shielded: one caller's cancellation is not the others')."""
        loading = self._loading.get(tenant)
        if loading is None:
            loading = asyncio.ensure_future(self._load(tenant))
            self._loading[tenant] = loading
            loading.add_done_callback(_retrieved)
        return await asyncio.shield(loading)

    async def _load(self, tenant: str) -> Limits:
        me = asyncio.current_task()
        try:
            now = self._clock()
            limits = await self._limits_of(tenant)
            if self._loading.get(tenant) is me:  # not forgotten meanwhile: still current
                if len(self._cache) > 100_000:
                    self._cache.clear()
                self._cache[tenant] = _CachedLimits(limits, now)
            return limits
        finally:
            if self._loading.get(tenant) is me:
                del self._loading[tenant]

    def forget(self, tenant: str) -> None:
        """Drop the cached limits, after the plan or the overrides changed; a read
        already in flight is left to its callers, and the next one reads anew."""
        self._cache.pop(tenant, None)
        self._loading.pop(tenant, None)

    # -- rates -------------------------------------------------------------------------

    async def _take(
        self, tenant: str, limit: str, rate: float | None, cost: float, *, force: bool = False
    ) -> Decision | None:
        if rate is None:
            return None
        if rate <= 0:
            self._count_throttle(tenant, limit)
            raise QuotaExceeded(limit, 1.0, 0.0, 0.0, 1.0)
        decision = await self._limiter.acquire(
            f"{tenant}:{limit}", rate=rate, burst=burst_of(rate), cost=cost, force=force
        )
        if not decision.allowed:
            self._count_throttle(tenant, limit)
            raise QuotaExceeded(
                limit,
                decision.retry_after_s,
                decision.limit,
                decision.remaining,
                decision.reset_s,
            )
        return decision

    def _count_throttle(self, tenant: str, limit: str) -> None:
        key = (tenant, limit)
        self.throttled[key] = self.throttled.get(key, 0) + 1

    async def admit_request(self, tenant: str) -> Decision | None:
        """One request against `requests_per_second`; QuotaExceeded when over it."""
        limits = self._cached(tenant) or await self._fetch_limits(tenant)
        if limits.requests_per_second is None:
            return None
        return await self._take(tenant, "requests_per_second", limits.requests_per_second, 1.0)

    async def admit_usage_read(self, tenant: str) -> None:
        """One read of the tenant's usage, against its own bound, not the request rate."""
        await self._take(tenant, "usage_reads_per_second", USAGE_READS_PER_SECOND, 1.0)

    async def admit_produce(self, tenant: str, nbytes: int) -> None:
        """`nbytes` of produce against `produce_bytes_per_second`, before anything is appended."""
        limits = self._cached(tenant) or await self._fetch_limits(tenant)
        if limits.produce_bytes_per_second is None:
            return
        await self._take(
            tenant, "produce_bytes_per_second", limits.produce_bytes_per_second, float(nbytes)
        )

    async def admit_consume(self, tenant: str) -> None:
        """Before a read: refused while earlier reads have left the consume bucket in debt."""
        limits = self._cached(tenant) or await self._fetch_limits(tenant)
        if limits.consume_bytes_per_second is None:
            return
        await self._take(tenant, "consume_bytes_per_second", limits.consume_bytes_per_second, 0.0)

    async def charge_consume(self, tenant: str, nbytes: int) -> None:
        """After a read: what it served, charged even past the limit (the next read waits)."""
        if nbytes <= 0:
            return
        limits = self._cached(tenant) or await self._fetch_limits(tenant)
        if limits.consume_bytes_per_second is None:
            return
        await self._take(
            tenant,
            "consume_bytes_per_second",
            limits.consume_bytes_per_second,
            float(nbytes),
            force=True,
        )

    # -- connections -------------------------------------------------------------------

    def connections(self, tenant: str) -> int:
        return self._connections.get(tenant, 0)

    @contextlib.contextmanager
    def connection(self, tenant: str, limits: Limits) -> Iterator[None]:
        """Hold one of the tenant's `max_connections` (a long-poll, WebSocket or SSE feed)."""
        current = self._connections.get(tenant, 0)
        check_count("max_connections", current, 1, limits.max_connections)
        self._connections[tenant] = current + 1
        try:
            yield
        finally:
            left = self._connections.get(tenant, 1) - 1
            if left > 0:
                self._connections[tenant] = left
            else:
                self._connections.pop(tenant, None)

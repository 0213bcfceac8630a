"""Rate limiting with GCRA, the generic cell rate algorithm, in process or in Redis.

GCRA is a token bucket stored as a single number per key: the *theoretical
arrival time* (TAT), the moment at which the bucket would be completely
refilled if nothing more were spent. With `rate` units per second and a
bucket of `burst` units:

* the bucket's fill (units in use) at time `now` is `(max(tat, now) - now) * rate`;
* a request of `cost` units fits when `fill + cost <= burst`, and then moves
  the TAT forward by `cost / rate`;
* a request that does not fit changes nothing, and is told exactly when it
  would fit (`retry_after_s`).

One float per key, no background refill, and the update is a read-compute-write
of that single value, which is what makes it cheap to run atomically in a
Redis script (one key per call, so it also works on Redis Cluster) and to bound
in memory (a key whose TAT is in the past is a full bucket and can be dropped).

The algorithm is written once as the pure function `gcra` (tested on its own,
with property tests) and mirrored in Lua for `RedisGcra`; `LocalGcra` calls
`gcra` directly.

Two deliberate departures from a textbook bucket:

* A cost larger than `burst` is charged as `burst`. Otherwise a single request
  bigger than the bucket (one large produce batch against a small byte rate)
  could never fit and would be refused forever, however long the client
  waited; charging a full bucket still makes the tenant wait a whole
  `burst / rate` afterwards, so the long-run rate stays bounded.
* `force=True` charges the whole cost without ever refusing, letting the
  bucket go into debt (fill above `burst`). It is for costs only known after
  the work is done (bytes served by a read): the next request waits until the
  debt is paid, and a `cost=0` request asks "is the bucket in debt?".
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from redis.exceptions import RedisError

from tenants.errors import LimiterUnavailable

if TYPE_CHECKING:
    import redis.asyncio
    import redis.asyncio.cluster

# Bound on the steps `_exact_retry` takes; a handful are ever needed.
_MAX_RETRY_NUDGES = 64
# Fill is computed from the TAT, so a bucket charged exactly to `burst` can read a
# rounding error above it and refuse a zero-cost check. Allow for that much: a
# billionth of the burst, plus a few ulps of the clock value times the rate (the
# time itself is only that precise). Far below anything a limit resolves; the same
# formula is in the Lua script.
_SLACK = 1e-9
_TIME_ULPS = 4 * 2.0**-52


def _slack(base: float, rate: float, burst: float) -> float:
    return burst * _SLACK + abs(base) * _TIME_ULPS * rate


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one `acquire`, with what a client needs for rate-limit headers."""

    allowed: bool
    limit: float
    """The rate, in units per second."""
    burst: float
    """The bucket size, in units."""
    remaining: float
    """Units that could be spent right now, after this decision."""
    retry_after_s: float
    """0 when allowed; else the seconds until the same cost would fit."""
    reset_s: float
    """Seconds until the bucket is full again (nothing in use)."""


class RateLimiter(Protocol):
    """Something that decides, per key, whether `cost` units may be spent now."""

    async def acquire(
        self,
        key: str,
        *,
        rate: float,
        burst: float,
        cost: float = 1.0,
        force: bool = False,
    ) -> Decision:
        """Spend `cost` units of `key`'s bucket if they fit; a refusal spends nothing.

        A cost above `burst` is charged as `burst` (see the module docstring).
        `force=True` always admits and charges the full cost, possibly into debt.
        """
        ...


def _check_args(rate: float, burst: float, cost: float) -> None:
    """Refuse arguments that would make the arithmetic meaningless (or divide by zero)."""
    if not (math.isfinite(rate) and rate > 0):
        raise ValueError(f"rate must be a positive finite number, not {rate!r}")
    if not (math.isfinite(burst) and burst > 0):
        raise ValueError(f"burst must be a positive finite number, not {burst!r}")
    if not (math.isfinite(cost) and cost >= 0):
        raise ValueError(f"cost must be a non-negative finite number, not {cost!r}")


def _fits(tat: float, now: float, rate: float, room: float, slack: float) -> bool:
    """Whether the fill at `now` leaves `room` free (room = burst - charge, >= 0),
    up to `slack` units of rounding."""
    return (max(tat, now) - now) * rate <= room + slack


def _exact_retry(tat: float, now: float, rate: float, room: float, slack: float) -> float:
    """The wait after which `_fits` holds, exact in floating point.

    The real-number answer `tat - now - room / rate` can be an ulp short once
    added back to `now`, which would make a client that waits exactly
    `retry_after_s` get refused again; so nudge it up until the very check
    `gcra` makes passes at `now + retry`.
    """
    retry = max(0.0, tat - now - (room + slack) / rate)
    for _ in range(_MAX_RETRY_NUDGES):
        if _fits(tat, now + retry, rate, room, slack):
            return retry
        retry += max(math.ulp(retry), math.ulp(now), math.ulp(tat))
    return max(retry, tat - now)  # at `tat` the bucket is full, which always fits


def gcra(
    tat: float,
    now: float,
    rate: float,
    burst: float,
    cost: float = 1.0,
    *,
    force: bool = False,
) -> tuple[float, Decision]:
    """One GCRA step: the new TAT and the decision. Pure, so it can be tested alone.

    `tat` is the stored theoretical arrival time (anything `<= now`, such as 0
    for an unknown key, means a full bucket). A refused request returns `tat`
    unchanged.
    """
    _check_args(rate, burst, cost)
    charge = cost if force else min(cost, burst)
    base = max(tat, now)
    room = burst - charge
    slack = _slack(base, rate, burst)
    if force or _fits(tat, now, rate, room, slack):
        new_tat = base + charge / rate
        in_use = (new_tat - now) * rate
        return new_tat, Decision(
            allowed=True,
            limit=rate,
            burst=burst,
            remaining=max(0.0, burst - in_use),
            retry_after_s=0.0,
            reset_s=new_tat - now,
        )
    in_use = (base - now) * rate
    return tat, Decision(
        allowed=False,
        limit=rate,
        burst=burst,
        remaining=max(0.0, burst - in_use),
        retry_after_s=_exact_retry(tat, now, rate, room, slack),
        reset_s=base - now,
    )


class LocalGcra:
    """GCRA in this process: right for one gateway, or as a fallback without Redis.

    A dict of TAT per key. It is bounded: when it reaches `max_keys` the keys
    whose TAT is in the past (full buckets, so forgetting them changes
    nothing) are swept; if that frees less than a tenth, the least recently
    charged keys go too. Forgetting a live key forgives its use, which is the
    price of a bound; with a few limits per tenant it takes an unrealistic
    number of busy tenants to get there.
    """

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000
    ) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self._clock = clock
        self._max_keys = max_keys
        self._tats: dict[str, float] = {}  # insertion order = least recently charged first

    def __len__(self) -> int:
        return len(self._tats)

    async def acquire(
        self,
        key: str,
        *,
        rate: float,
        burst: float,
        cost: float = 1.0,
        force: bool = False,
    ) -> Decision:
        """See `RateLimiter.acquire`. No await inside, so it is atomic on the event loop."""
        now = self._clock()
        old = self._tats.get(key, now)
        new_tat, decision = gcra(old, now, rate, burst, cost, force=force)
        if decision.allowed and new_tat != old:
            self._tats.pop(key, None)
            if new_tat > now:
                if len(self._tats) >= self._max_keys:
                    self._evict(now)
                self._tats[key] = new_tat
        return decision

    def _evict(self, now: float) -> None:
        """Make room: drop full buckets, then the least recently charged if still crowded."""
        live = [(k, t) for k, t in self._tats.items() if t > now]
        target = self._max_keys - max(1, self._max_keys // 10)
        if len(live) > target:
            live = live[len(live) - target :]
        self._tats = dict(live)


# KEYS[1]: the bucket. ARGV: rate, burst, cost (decimal strings), force ("1"/"0").
# Returns {allowed (0/1), remaining, retry_after_s, reset_s}, the floats as strings
# because Redis turns a Lua number reply into an integer.
# The same arithmetic as `gcra`, with the time taken from the server so that all
# gateways agree on "now" whatever their own clocks say.
GCRA_LUA = """
local key = KEYS[1]
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local force = ARGV[4] == '1'

local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000

local stored = redis.call('GET', key)
local tat = now
if stored then
  tat = tonumber(stored)
end
local base = tat
if base < now then
  base = now
end

local charge = cost
if not force and charge > burst then
  charge = burst
end
local room = burst - charge
local slack = burst * 1e-9 + math.abs(base) * 4 * 2.220446049250313e-16 * rate

local function fmt(x)
  return string.format('%.17g', x)
end

if force or (base - now) * rate <= room + slack then
  local new_tat = base + charge / rate
  local remaining = burst - (new_tat - now) * rate
  if remaining < 0 then
    remaining = 0
  end
  local ttl_ms = math.ceil((new_tat - now) * 1000)
  if ttl_ms > 0 then
    redis.call('SET', key, fmt(new_tat), 'PX', string.format('%d', ttl_ms))
  end
  return {1, fmt(remaining), '0', fmt(new_tat - now)}
end

local remaining = burst - (base - now) * rate
if remaining < 0 then
  remaining = 0
end
local retry = base - now - (room + slack) / rate
if retry < 0 then
  retry = 0
end
return {0, fmt(remaining), fmt(retry), fmt(base - now)}
"""


def _num(value: object) -> float:
    """A float from a script reply element (bytes or str, depending on decode_responses)."""
    if isinstance(value, bytes | bytearray):
        return float(value.decode())
    if isinstance(value, str | int | float):
        return float(value)
    raise TypeError(f"unexpected reply element {value!r}")


class RedisGcra:
    """GCRA in Redis, so every gateway sharing the Redis draws from one bucket per key.

    One Lua script call per `acquire`: atomic, one round trip, one key (so
    the key's hash slot decides the node on Redis Cluster). The time comes
    from the server's `TIME`, not the gateways' clocks. The key expires when
    its bucket would be full again, so idle tenants cost no memory.

    The retry hint is computed in Lua in plain arithmetic; it can be a
    microsecond-scale rounding short, which is harmless because a client
    never retries at exactly that instant of the server's clock anyway.
    """

    def __init__(
        self,
        client: redis.asyncio.Redis[Any] | redis.asyncio.cluster.RedisCluster[Any],
        *,
        prefix: str = "tg:rl:",
    ) -> None:
        self._client = client
        self._prefix = prefix
        # types-redis 4.6 does not know RedisCluster.register_script; redis-py has it.
        self._script = client.register_script(GCRA_LUA)  # type: ignore[union-attr]

    def key(self, key: str) -> str:
        """The Redis key that holds `key`'s TAT."""
        return self._prefix + key

    async def acquire(
        self,
        key: str,
        *,
        rate: float,
        burst: float,
        cost: float = 1.0,
        force: bool = False,
    ) -> Decision:
        """See `RateLimiter.acquire`."""
        _check_args(rate, burst, cost)
        try:
            reply = await self._script(
                keys=[self.key(key)],
                args=[
                    repr(float(rate)),
                    repr(float(burst)),
                    repr(float(cost)),
                    "1" if force else "0",
                ],
            )
        except (RedisError, OSError) as exc:
            # Fail closed: without the shared bucket no gateway may admit on its own.
            raise LimiterUnavailable(type(exc).__name__) from exc
        allowed, remaining, retry, reset = reply
        return Decision(
            allowed=_num(allowed) == 1,
            limit=rate,
            burst=burst,
            remaining=_num(remaining),
            retry_after_s=_num(retry),
            reset_s=_num(reset),
        )

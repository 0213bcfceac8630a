"""GCRA: the pure step (property tests), the in-process limiter, the Redis script.

The Redis tests run against a real redis-server started by the test harness
(`tests.support`), never against a Redis the machine may already run.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import AsyncIterator

import anyio
import pytest
import redis.asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from tenants.ratelimit import Decision, LocalGcra, RateLimiter, RedisGcra, gcra
from tests.support.fixtures import redis_server, redis_url  # noqa: F401

# -- the pure step -----------------------------------------------------------------------

Step = tuple[float, float]  # (time since the previous request, cost)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[float, float, list[Step]]:
    """A rate, a burst and a sequence of (time step >= 0, cost) including costs above burst."""
    rate = draw(st.floats(min_value=0.01, max_value=10_000, allow_nan=False))
    burst = draw(st.floats(min_value=0.01, max_value=1_000, allow_nan=False))
    interval = 1.0 / rate
    dt = st.one_of(
        st.just(0.0),
        st.floats(min_value=0.0, max_value=3 * interval, allow_nan=False),
        st.floats(min_value=0.0, max_value=3 * burst * interval, allow_nan=False),
    )
    cost = st.one_of(
        st.just(0.0),
        st.just(1.0),
        st.floats(min_value=0.0, max_value=burst, allow_nan=False),
        st.floats(min_value=0.0, max_value=3 * burst, allow_nan=False),
    )
    steps = draw(st.lists(st.tuples(dt, cost), min_size=1, max_size=60))
    return rate, burst, steps


def _run(
    rate: float, burst: float, steps: list[Step], start: float = 1000.0
) -> list[tuple[float, float, float, float, Decision]]:
    """(now, cost, tat before, tat after, decision) for each step."""
    out = []
    now, tat = start, 0.0
    for dt, cost in steps:
        now += dt
        new_tat, decision = gcra(tat, now, rate, burst, cost)
        out.append((now, cost, tat, new_tat, decision))
        tat = new_tat
    return out


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_admitted_cost_in_any_window_is_bounded(scenario: tuple[float, float, list[Step]]) -> None:
    """Over any window [t_i, t_j], admitted (charged) cost <= rate * (t_j - t_i) + burst.

    Windows that start and end at requests are the tightest, so checking every
    such pair checks every window. The charge is min(cost, burst). The tiny
    slack only absorbs floating-point rounding (see `_slack` in the module).
    """
    rate, burst, steps = scenario
    events = _run(rate, burst, steps)
    for i in range(len(events)):
        admitted = 0.0
        for j in range(i, len(events)):
            now, cost, _, _, decision = events[j]
            if decision.allowed:
                admitted += min(cost, burst)
            bound = rate * (now - events[i][0]) + burst
            assert admitted <= bound * (1 + 1e-8) + rate * 1e-10, (i, j, admitted, bound)


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_a_refusal_changes_nothing(scenario: tuple[float, float, list[Step]]) -> None:
    rate, burst, steps = scenario
    for _, _, before, after, decision in _run(rate, burst, steps):
        if not decision.allowed:
            assert after == before
            assert decision.retry_after_s > 0
        else:
            assert decision.retry_after_s == 0.0


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_retry_after_is_exact(scenario: tuple[float, float, list[Step]]) -> None:
    """Coming back exactly `retry_after_s` later with the same cost is admitted, and not
    much earlier (half the wait) is still refused."""
    rate, burst, steps = scenario
    for now, cost, tat, _, decision in _run(rate, burst, steps):
        if decision.allowed:
            continue
        retry = decision.retry_after_s
        assert gcra(tat, now + retry, rate, burst, cost)[1].allowed
        if retry * rate > 1e-6:
            assert not gcra(tat, now + retry / 2, rate, burst, cost)[1].allowed


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_remaining_and_reset_are_consistent(scenario: tuple[float, float, list[Step]]) -> None:
    rate, burst, steps = scenario
    for now, _, _, tat, decision in _run(rate, burst, steps):
        if not decision.allowed:
            continue
        assert 0.0 <= decision.remaining <= burst
        # What `remaining` promises can be spent right now ...
        spend = decision.remaining * (1 - 1e-9)
        assert gcra(tat, now, rate, burst, spend)[1].allowed
        # ... and after `reset_s` the bucket is full again.
        later = gcra(tat, now + decision.reset_s, rate, burst, 0.0)[1]
        assert later.remaining == pytest.approx(burst, rel=1e-9, abs=1e-9)


def test_fresh_bucket_admits_burst_then_one_per_interval() -> None:
    tat, now = 0.0, 50.0
    for _ in range(5):
        tat, d = gcra(tat, now, 4.0, 5.0)
        assert d.allowed
    assert d.remaining == 0.0
    assert d.reset_s == pytest.approx(5 / 4)
    tat, d = gcra(tat, now, 4.0, 5.0)
    assert not d.allowed
    assert d.retry_after_s == pytest.approx(0.25)
    assert (d.limit, d.burst) == (4.0, 5.0)


def test_cost_above_burst_is_charged_as_burst() -> None:
    tat, d = gcra(0.0, 10.0, 2.0, 4.0, 100.0)
    assert d.allowed
    assert tat == pytest.approx(10.0 + 4 / 2)  # a full bucket, not 50 s of debt
    _, d = gcra(tat, 10.0, 2.0, 4.0, 100.0)
    assert not d.allowed
    assert d.retry_after_s == pytest.approx(2.0)


def test_force_goes_into_debt_and_zero_cost_waits_for_it() -> None:
    tat, d = gcra(0.0, 10.0, 2.0, 4.0, 20.0, force=True)
    assert d.allowed
    assert tat == pytest.approx(20.0)  # the full 20 units: 10 s at 2 units/s
    assert d.remaining == 0.0
    _, d = gcra(tat, 12.0, 2.0, 4.0, 0.0)
    assert not d.allowed
    assert d.retry_after_s == pytest.approx(6.0)  # debt paid down to a full bucket at 18 s
    assert gcra(tat, 18.0, 2.0, 4.0, 0.0)[1].allowed


@pytest.mark.parametrize(
    ("rate", "burst", "cost"),
    [(0.0, 1.0, 1.0), (-1.0, 1.0, 1.0), (1.0, 0.0, 1.0), (1.0, 1.0, -1.0), (math.inf, 1.0, 1.0)],
)
def test_bad_arguments(rate: float, burst: float, cost: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        gcra(0.0, 0.0, rate, burst, cost)


# -- LocalGcra ---------------------------------------------------------------------------


class FakeClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


pytestmark = pytest.mark.anyio


async def test_local_admits_burst_then_one_per_interval() -> None:
    clock = FakeClock()
    limiter: RateLimiter = LocalGcra(clock=clock)
    rate, burst = 4.0, 5.0
    allowed = [(await limiter.acquire("t:rps", rate=rate, burst=burst)).allowed for _ in range(8)]
    assert allowed == [True] * 5 + [False] * 3
    for _ in range(10):
        refused = await limiter.acquire("t:rps", rate=rate, burst=burst)
        assert not refused.allowed
        assert refused.retry_after_s == pytest.approx(1 / rate)
        clock.now += refused.retry_after_s
        assert (await limiter.acquire("t:rps", rate=rate, burst=burst)).allowed
        assert not (await limiter.acquire("t:rps", rate=rate, burst=burst)).allowed
    # another key is a different bucket
    assert (await limiter.acquire("u:rps", rate=rate, burst=burst)).allowed


async def test_local_is_bounded() -> None:
    clock = FakeClock()
    limiter = LocalGcra(clock=clock, max_keys=10)
    for i in range(10):
        await limiter.acquire(f"k{i}", rate=1.0, burst=5.0)
    assert len(limiter) == 10
    clock.now += 10  # every bucket is full again: the sweep drops them all
    await limiter.acquire("new", rate=1.0, burst=5.0)
    assert len(limiter) == 1
    for i in range(100):  # all live: the least recently charged go
        await limiter.acquire(f"live{i}", rate=1.0, burst=5.0)
        assert len(limiter) <= 10
    # the most recent key survived eviction and is still charged
    assert (await limiter.acquire("live99", rate=1.0, burst=5.0)).remaining == pytest.approx(3.0)


async def test_local_zero_cost_on_unknown_key_stores_nothing() -> None:
    limiter = LocalGcra(clock=FakeClock())
    d = await limiter.acquire("idle", rate=1.0, burst=5.0, cost=0.0)
    assert d.allowed
    assert d.remaining == 5.0
    assert len(limiter) == 0


# -- RedisGcra ---------------------------------------------------------------------------


async def aclose(client: redis.asyncio.Redis[bytes]) -> None:
    """Close a client (an unclosed one is a ResourceWarning, and warnings are errors)."""
    await client.aclose()  # type: ignore[attr-defined]  # types-redis 4.6 predates aclose


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis[bytes]]:  # noqa: F811
    c: redis.asyncio.Redis[bytes] = redis.asyncio.Redis.from_url(redis_url)
    try:
        yield c
    finally:
        await aclose(c)


@pytest.mark.redis
async def test_redis_admits_burst_then_one_per_interval(client: redis.asyncio.Redis[bytes]) -> None:
    limiter: RateLimiter = RedisGcra(client)
    rate, burst = 5.0, 3.0
    started = time.monotonic()
    decisions = [await limiter.acquire("t:rps", rate=rate, burst=burst) for _ in range(4)]
    # Redis's clock runs on while the calls travel: that much of the bucket refills.
    refilled = rate * (time.monotonic() - started) + 1e-6
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert 0 <= decisions[2].remaining <= refilled
    refused = decisions[3]
    assert 0 < refused.retry_after_s <= 1 / rate + 1e-6
    assert burst / rate - refilled / rate <= refused.reset_s <= burst / rate + 1e-6
    for _ in range(2):
        await anyio.sleep(refused.retry_after_s)
        assert (await limiter.acquire("t:rps", rate=rate, burst=burst)).allowed
        refused = await limiter.acquire("t:rps", rate=rate, burst=burst)
        assert not refused.allowed


@pytest.mark.redis
async def test_redis_two_gateways_share_one_limit(redis_url: str) -> None:  # noqa: F811
    a = redis.asyncio.Redis.from_url(redis_url)
    b = redis.asyncio.Redis.from_url(redis_url)
    try:
        gateways = [RedisGcra(a), RedisGcra(b)]
        allowed = [
            (await gateways[i % 2].acquire("t:rps", rate=1.0, burst=5.0)).allowed for i in range(10)
        ]
        assert sum(allowed) == 5
        assert allowed[:5] == [True] * 5
    finally:
        await aclose(a)
        await aclose(b)


@pytest.mark.redis
async def test_redis_admitted_rate(client: redis.asyncio.Redis[bytes]) -> None:
    """Looping against rate 50/s, burst 5 for ~2 s never admits more than rate * T + burst
    (the limiter's promise, whatever the machine's load) and not far fewer (the client
    sleeps only as told, but a loaded machine may wake it late)."""
    limiter = RedisGcra(client)
    rate, burst, duration = 50.0, 5.0, 2.0
    admitted = calls = 0
    start = time.monotonic()
    deadline = start + duration
    while calls < 20_000 and time.monotonic() < deadline:
        calls += 1
        d = await limiter.acquire("t:rps", rate=rate, burst=burst)
        if d.allowed:
            admitted += 1
        else:
            await anyio.sleep(min(d.retry_after_s, max(0.0, deadline - time.monotonic())))
    elapsed = time.monotonic() - start
    expected = rate * elapsed + burst
    print(f"admitted {admitted} in {elapsed:.3f} s ({calls} calls); rate*T+burst = {expected:.1f}")
    assert admitted <= expected + 1
    assert admitted >= 0.75 * expected


@pytest.mark.redis
async def test_redis_keys_expire_when_the_bucket_is_full(
    client: redis.asyncio.Redis[bytes],
) -> None:
    limiter = RedisGcra(client, prefix="test:rl:")
    await limiter.acquire("t:rps", rate=10.0, burst=5.0)
    assert limiter.key("t:rps") == "test:rl:t:rps"
    ttl = await client.pttl("test:rl:t:rps")
    assert 0 < ttl <= 100  # one unit at 10/s is paid back in 100 ms
    for _ in range(4):
        await limiter.acquire("t:rps", rate=10.0, burst=5.0)
    assert 400 < await client.pttl("test:rl:t:rps") <= 500
    await limiter.acquire("idle", rate=200.0, burst=5.0)
    await anyio.sleep(0.1)
    assert await client.exists("test:rl:idle") == 0
    # a zero-cost check on an unknown key writes nothing
    await limiter.acquire("never", rate=1.0, burst=5.0, cost=0.0)
    assert await client.exists("test:rl:never") == 0


@pytest.mark.redis
async def test_redis_tenants_are_independent(client: redis.asyncio.Redis[bytes]) -> None:
    limiter = RedisGcra(client)
    for _ in range(3):
        assert (await limiter.acquire("a:rps", rate=1.0, burst=3.0)).allowed
    assert not (await limiter.acquire("a:rps", rate=1.0, burst=3.0)).allowed
    for _ in range(3):
        assert (await limiter.acquire("b:rps", rate=1.0, burst=3.0)).allowed
    assert not (await limiter.acquire("b:rps", rate=1.0, burst=3.0)).allowed


@pytest.mark.redis
async def test_redis_matches_the_pure_function(client: redis.asyncio.Redis[bytes]) -> None:
    """The Lua mirror of `gcra`: the same decisions for the same costs.

    The rate is so low that the milliseconds the calls take refill nothing
    worth mentioning, so the pure function runs with time standing still.
    """
    limiter = RedisGcra(client)
    rng = random.Random(7)
    rate, burst = 0.001, 10.0
    tat = 0.0
    for i in range(60):
        cost = rng.choice([0.0, 0.5, 1.0, 2.5, 12.0])
        force = i % 17 == 16
        tat, want = gcra(tat, 0.0, rate, burst, cost, force=force)
        got = await limiter.acquire("t:bytes", rate=rate, burst=burst, cost=cost, force=force)
        assert got.allowed == want.allowed, (i, cost, force)
        assert got.remaining == pytest.approx(want.remaining, abs=0.01)
        assert got.retry_after_s == pytest.approx(want.retry_after_s, rel=1e-3, abs=1.0)
        assert got.reset_s == pytest.approx(want.reset_s, rel=1e-3, abs=1.0)


@pytest.mark.anyio
async def test_an_unreachable_redis_refuses_instead_of_admitting() -> None:
    """Fail closed, and fast: with no shared bucket no gateway admits on its own."""
    from tenants.errors import LimiterUnavailable
    from tests.support.redis_server import free_port

    client = redis.asyncio.Redis(
        host="127.0.0.1", port=free_port(), socket_timeout=1.0, socket_connect_timeout=1.0
    )
    try:
        started = time.monotonic()
        with pytest.raises(LimiterUnavailable):
            await RedisGcra(client).acquire("t:requests_per_second", rate=10, burst=10)
        # refused connections with redis-py's retries: ~1 s quiet; the bound only rules out a hang
        assert time.monotonic() - started < 15
    finally:
        await aclose(client)

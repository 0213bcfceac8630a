"""The throttle on failed client authentications: per id, past its burst, bounded over time."""

from __future__ import annotations

import math

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenants.auth_throttle import ClientAuthThrottle
from tenants.errors import ClientAuthThrottled
from tenants.ratelimit import LocalGcra


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def attempt(throttle: ClientAuthThrottle, client_id: str, *, fails: bool = True) -> bool:
    """One authentication attempt as the endpoints make it: admitted, then maybe failed."""
    try:
        await throttle.admit(client_id)
    except ClientAuthThrottled:
        return False
    if fails:
        await throttle.failed(client_id)
    return True


@pytest.mark.anyio
async def test_past_the_burst_an_id_is_refused_until_its_bucket_drains() -> None:
    clock = Clock()
    throttle = ClientAuthThrottle(LocalGcra(clock), burst=3, per_second=0.5)
    assert [await attempt(throttle, "aaaaaaaaaaaa") for _ in range(4)] == [True] * 4
    with pytest.raises(ClientAuthThrottled) as refused:
        await throttle.admit("aaaaaaaaaaaa")
    assert refused.value.retry_after_s == pytest.approx(2.0)
    assert await attempt(throttle, "bbbbbbbbbbbb")  # another id is its own bucket
    clock.now += refused.value.retry_after_s
    assert await attempt(throttle, "aaaaaaaaaaaa")  # one attempt regained...
    assert not await attempt(throttle, "aaaaaaaaaaaa")  # ...and spent


@pytest.mark.anyio
async def test_successes_cost_nothing() -> None:
    throttle = ClientAuthThrottle(LocalGcra(Clock()), burst=1, per_second=0.1)
    for _ in range(50):
        assert await attempt(throttle, "aaaaaaaaaaaa", fails=False)


@settings(max_examples=60, deadline=None)
@given(
    burst=st.integers(min_value=1, max_value=20),
    per_second=st.floats(min_value=0.05, max_value=20.0),
    gaps=st.lists(st.floats(min_value=0.0, max_value=2.0), min_size=1, max_size=80),
)
def test_checked_failures_never_outrun_the_burst_plus_the_drain(
    burst: int, per_second: float, gaps: list[float]
) -> None:
    """However an attacker spaces its guesses, the secrets checked in the first T seconds
    are at most burst + 1 + T * per_second."""

    async def run() -> None:
        clock = Clock()
        throttle = ClientAuthThrottle(LocalGcra(clock), burst=burst, per_second=per_second)
        start = clock.now
        checked = 0
        for gap in gaps:
            clock.now += gap
            checked += await attempt(throttle, "aaaaaaaaaaaa")
            elapsed = clock.now - start
            assert checked <= burst + 1 + math.floor(elapsed * per_second + 1e-9)

    anyio.run(run)

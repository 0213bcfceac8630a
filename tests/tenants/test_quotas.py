"""A tenant's limits are read once by the requests that find them expired together,
and an operator's change is seen by the next request."""

from __future__ import annotations

import asyncio

import pytest

from tenants.plans import Limits
from tenants.quotas import QuotaService
from tenants.ratelimit import LocalGcra


class Directory:
    """The limits a tenant has now, read with a pause the way a store read pauses."""

    def __init__(self) -> None:
        self.limits = Limits(requests_per_second=100.0)
        self.reads = 0
        self.release = asyncio.Event()

    async def limits_of(self, tenant: str) -> Limits:
        self.reads += 1
        limits = self.limits
        await self.release.wait()
        return limits


@pytest.mark.anyio
async def test_requests_that_find_the_limits_expired_together_share_one_read() -> None:
    directory = Directory()
    quotas = QuotaService(directory.limits_of, LocalGcra())
    waiting = [asyncio.ensure_future(quotas.limits("acme")) for _ in range(20)]
    await asyncio.sleep(0)
    directory.release.set()
    assert set(await asyncio.gather(*waiting)) == {directory.limits}
    assert directory.reads == 1
    assert await quotas.limits("acme") == directory.limits
    assert directory.reads == 1  # cached now


@pytest.mark.anyio
async def test_a_caller_cancelled_while_waiting_does_not_cancel_the_others() -> None:
    directory = Directory()
    quotas = QuotaService(directory.limits_of, LocalGcra())
    first = asyncio.ensure_future(quotas.limits("acme"))
    second = asyncio.ensure_future(quotas.limits("acme"))
    await asyncio.sleep(0)
    first.cancel()
    directory.release.set()
    assert await second == directory.limits
    assert first.cancelled()


@pytest.mark.anyio
async def test_after_forget_the_next_request_reads_anew_even_with_a_read_in_flight() -> None:
    directory = Directory()
    quotas = QuotaService(directory.limits_of, LocalGcra())
    before = asyncio.ensure_future(quotas.limits("acme"))
    await asyncio.sleep(0)
    directory.limits = Limits(requests_per_second=1.0)  # the operator changes the plan
    quotas.forget("acme")
    after = asyncio.ensure_future(quotas.limits("acme"))
    await asyncio.sleep(0)
    directory.release.set()
    assert (await after).requests_per_second == 1.0
    await before
    assert directory.reads == 2
    assert (await quotas.limits("acme")).requests_per_second == 1.0  # the stale read not kept

"""Rate quotas hold across gateways: two processes sharing one real Redis draw from one bucket,
and excess requests are all answered 429 with Retry-After."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.gateway.conftest import GatewayProcess
from tests.support.fixtures import redis_server, redis_url  # noqa: F401

RATE = 40  # requests per second; the bucket holds one second's worth
SECONDS = 4.0


def hammer(clients: list[httpx.Client], seconds: float) -> tuple[int, int, int, float]:
    """Round-robin GETs over `clients` for `seconds` (bounded in count too).

    Returns (admitted, refused, refused without Retry-After, elapsed).
    """
    admitted = refused = bare = 0
    start = time.monotonic()
    for n in range(20_000):
        elapsed = time.monotonic() - start
        if elapsed >= seconds:
            break
        r = clients[n % len(clients)].get("/v1/topics")
        if r.status_code == 200:
            admitted += 1
        elif r.status_code == 429:
            refused += 1
            bare += "Retry-After" not in r.headers
        else:
            raise AssertionError(r.text)
    return admitted, refused, bare, time.monotonic() - start


@pytest.fixture
def two_gateways(tmp_path: Path, redis_url: str) -> Iterator[list[GatewayProcess]]:  # noqa: F811
    env = {"TIDEGATE_REDIS_URL": redis_url, "TIDEGATE_RATE_LIMITER": "redis"}
    gateways = [GatewayProcess(tmp_path / f"gw{i}", env=env) for i in range(2)]
    try:
        for g in gateways:
            g.start()
        yield gateways
    finally:
        for g in gateways:
            g.stop()


def test_two_gateways_share_one_rate_limit_through_redis(
    two_gateways: list[GatewayProcess],
) -> None:
    clients = [g.client() for g in two_gateways]
    try:
        for c in clients:  # the same tenant and quota on both (each has its own directory)
            r = c.put("/v1/admin/tenants/default/quotas", json={"requests_per_second": RATE})
            assert r.status_code == 200, r.text
        time.sleep(1.5)  # let the bucket fill again
        admitted, refused, bare, elapsed = hammer(clients, SECONDS)
    finally:
        for c in clients:
            c.close()
    expected = RATE * elapsed + RATE  # the rate over the window plus one full bucket
    print(
        f"\ntwo gateways, one Redis: admitted={admitted} in {elapsed:.2f} s "
        f"(quota allows {expected:.0f}: {admitted / expected:.3f}x), refused 429={refused}, "
        f"429 without Retry-After={bare}"
    )
    assert refused > admitted  # the clients asked far above the quota
    assert bare == 0
    assert abs(admitted - expected) <= 0.05 * expected


def test_one_gateway_admits_its_quota_and_answers_the_rest_429(tmp_path: Path) -> None:
    gateway = GatewayProcess(tmp_path / "data").start()
    try:
        with gateway.client() as c:
            r = c.put("/v1/admin/tenants/default/quotas", json={"requests_per_second": RATE})
            assert r.status_code == 200
            time.sleep(1.5)
            admitted, refused, bare, elapsed = hammer([c], SECONDS)
    finally:
        gateway.stop()
    expected = RATE * elapsed + RATE
    print(
        f"\none gateway, in-process limiter: admitted={admitted} in {elapsed:.2f} s "
        f"(quota allows {expected:.0f}: {admitted / expected:.3f}x), refused 429={refused}, "
        f"429 without Retry-After={bare}"
    )
    assert bare == 0
    assert abs(admitted - expected) <= 0.05 * expected


def test_a_gateway_whose_redis_is_down_answers_503_with_retry_after(tmp_path: Path) -> None:
    from tests.support.redis_server import free_port

    dead = f"redis://127.0.0.1:{free_port()}/0"
    env = {"TIDEGATE_REDIS_URL": dead, "TIDEGATE_RATE_LIMITER": "redis"}
    gateway = GatewayProcess(tmp_path / "data", env=env).start()
    try:
        with gateway.client() as c:
            assert (
                c.put(
                    "/v1/admin/tenants/default/quotas", json={"requests_per_second": 5}
                ).status_code
                == 200
            )
            r = c.get("/v1/topics")
    finally:
        gateway.stop()
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"].endswith("/backend-unavailable")
    assert r.headers["Retry-After"] == "1"

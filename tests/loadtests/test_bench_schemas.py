"""The schema benchmark's machinery for a second a side: the setup registers both
schemas and binds the topics, and every side's batch is accepted (wrk fails a slice on
any response of 400 and above, so a body the schemas refused would fail here)."""

from __future__ import annotations

from pathlib import Path

import orjson

from loadtests import bench_schemas, wrk_runner
from loadtests.bench_gateway import start_gateway
from loadtests.order_schema import order


def test_the_sides_rotate() -> None:
    assert bench_schemas.rotation(2) == ["plain", "json", "avro", "json", "avro", "plain"]


def test_every_side_is_measured_and_accepted(tmp_path: Path) -> None:
    gateway = start_gateway(tmp_path / "data", tmp_path, 0)
    try:
        key = bench_schemas.setup(gateway.url)
        body = tmp_path / "body.json"
        body.write_bytes(orjson.dumps({"records": [{"value": order(i)} for i in range(100)]}))
        for side in bench_schemas.SIDES:
            measured = wrk_runner.run(
                "produce_file",
                gateway.url,
                [key, side, str(body)],
                connections=2,
                seconds=1,
                pid=gateway.pid,
            )
            assert measured.requests > 0
            assert measured.server_cpu_s > 0
    finally:
        gateway.stop()

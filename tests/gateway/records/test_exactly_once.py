"""An idempotent produce that failed part-way, retried: the gateway's append path over
the embedded log with one partition's disk full. The retry appends only the
partition that lacks the request's batch, its reply names every record where it
is stored, and keyless records land where the first attempt put them."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from gateway.http.jsonlimits import JsonLimits
from gateway.records.batching import JSON, Appendable, Bounds, checked, scanned
from gateway.records.fastpath import FastPaths, built
from gateway.records.idempotency import fingerprint, placement_start, request_identity
from gateway.records.partitioner import RoundRobin
from gateway.records.produce import append_groups
from storage.embedded.engine import EmbeddedLogStore
from storage.embedded.options import EngineOptions
from storage.errors import DiskFull
from storage.records import Durability, TopicConfig, TopicInfo
from tests.storage.faults import FullDirectory
from tests.storage.layout import partition_dir

pytestmark = pytest.mark.anyio

TOPIC = "acme~orders"
NOW = 1_764_000_000_000
PATHS: dict[str, FastPaths | None] = {"reference": None}
if (fast_paths := built()) is not None:
    PATHS["fast"] = fast_paths


def body() -> bytes:
    records: list[dict[str, object]] = [
        {"partition": p, "value": f"explicit-{p}-{i}"} for i in range(2) for p in range(5)
    ]
    records += [{"value": f"keyless-{i}"} for i in range(7)]
    records += [{"key": f"user-{i}", "value": f"keyed-{i}"} for i in range(6)]
    return orjson.dumps({"records": records})


def appendable(info: TopicInfo, raw: bytes, fast: FastPaths | None, identity: bytes) -> Appendable:
    """The request as produce builds it, keyless records placed from the identity."""
    bounds = Bounds(JsonLimits(), 1000, 1 << 20)
    placement = RoundRobin.starting_at(info.name, placement_start(identity))
    if fast is not None:
        batch = scanned(fast, raw, info, bounds, placement, NOW)
        assert batch is not None
        return batch
    return checked(JSON, raw, {}, info, bounds, placement, NOW)


@pytest.mark.parametrize("path", list(PATHS))
async def test_a_five_partition_request_failing_on_its_third_partition_then_retried(
    tmp_path: Path, path: str
) -> None:
    fast = PATHS[path]
    fio = FullDirectory()
    store = await EmbeddedLogStore.open(str(tmp_path), options=EngineOptions(shards=2), fileio=fio)
    try:
        info = await store.create_topic(TOPIC, 5, TopicConfig(durability=Durability.FSYNC))
        raw = body()
        fp = fingerprint("POST", "/v1/topics/orders/records", "", JSON, raw)
        identity = request_identity("acme", "orders", "order-7", fp, 5)
        fio.full.add(str(partition_dir(tmp_path, TOPIC, 2)))
        with pytest.raises(DiskFull):
            await append_groups(store, TOPIC, appendable(info, raw, fast, identity), fast, identity)
        ends = [(await store.offsets(TOPIC, p)).end_offset for p in range(5)]
        assert ends[2] == 0
        assert sum(ends) > 0  # the other partitions were written
        fio.full.clear()
        # The retry is parsed again (after a restart it would be): same placement.
        reply = await append_groups(
            store, TOPIC, appendable(info, raw, fast, identity), fast, identity
        )
        again = await append_groups(
            store, TOPIC, appendable(info, raw, fast, identity), fast, identity
        )
        assert again == reply
        offsets = orjson.loads(reply)
        values = [r["value"] for r in orjson.loads(raw)["records"]]
        stored: dict[tuple[int, int], str] = {}
        for p in range(5):
            result = await store.read(TOPIC, p, 0, max_records=1000)
            for rec in result.records:
                assert rec.value is not None
                stored[(p, rec.offset)] = orjson.loads(rec.value)
        assert sorted(stored.values()) == sorted(values)  # every record exactly once
        assert [stored[(o["partition"], o["offset"])] for o in offsets] == values
    finally:
        await store.close()

"""Schema validation's cost: batched produce to a schema-bound topic against the same
topic without a schema, driven by wrk, in one run.

Run: `make bench-schemas` (`python -m loadtests.bench_schemas`; about a minute, or
`--quick`). Not a test: it prints figures and the aim with PASS or MISS and exits
0 whatever they are; it exits non-zero when a phase goes wrong (wrk missing, any
response of 400 and above), because then it measured something else.

One `tidegate serve` on loopback (its defaults, fsync durability among them, a
fresh data directory), a tenant on the unlimited plan, and three topics of one
partition: `plain` (no schema), `json` bound to the realistic 15-field order
schema as JSON Schema, and `avro` bound to the equivalent Avro schema
(loadtests/order_schema.py). Every request is the same 100-record batch of
order values (about 40 KB), valid under both schemas. The three sides are
driven in slices in rotating order (plain, json, avro; json, avro, plain; ...)
so that the drift of a shared machine falls on every side alike. Printed per
side: requests/s, records/s, the gateway process's CPU µs per request (from
/proc/<pid>/stat: stable on a busy machine, unlike wall time), p50/p99, and
each schema side's throughput relative to `plain`. The aim: validation costs
at most 25% of produce throughput (a ratio of at least 0.75).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import httpx
import orjson

from loadtests import wrk_runner
from loadtests.bench_gateway import OPERATOR_KEY, Server, _expect, start_gateway
from loadtests.order_schema import AVRO_SCHEMA, JSON_SCHEMA, order
from loadtests.wrk_runner import Slice, Totals

RECORDS = 100
CONNECTIONS = 32
AIM = 0.75
SIDES = ("plain", "json", "avro")


def setup(url: str) -> str:
    """A tenant with a key that may register schemas, its subjects and three topics."""
    operator = {"Authorization": f"Bearer {OPERATOR_KEY}"}
    with httpx.Client(base_url=url, headers=operator, timeout=30) as admin:
        _expect(admin.post("/v1/admin/tenants", json={"name": "bench", "plan": "unlimited"}), 201)
        scopes = ["topics:read", "topics:write", "topics:admin", "schemas:write"]
        created = admin.post("/v1/admin/tenants/bench/keys", json={"scopes": scopes})
        key: str = _expect(created, 201).json()["key"]
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as api:
        for kind, schema in (("JSON", JSON_SCHEMA), ("AVRO", AVRO_SCHEMA)):
            body = {"schema_type": kind, "schema": schema}
            _expect(api.post(f"/v1/schemas/{kind.lower()}-value/versions", json=body), 201)
        for side in SIDES:
            config = {} if side == "plain" else {"value_schema": f"{side}-value"}
            _expect(api.post("/v1/topics", json={"name": side, "config": config}), 201)
    return key


def rotation(rounds: int) -> list[str]:
    """plain json avro, json avro plain, avro plain json, ..."""
    order_: list[str] = []
    for i in range(rounds):
        k = i % len(SIDES)
        order_ += [*SIDES[k:], *SIDES[:k]]
    return order_


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short slices, fewer rounds")
    parser.add_argument("--seconds", type=int, default=4, help="one wrk slice")
    parser.add_argument("--rounds", type=int, default=6, help="slices per side")
    args = parser.parse_args()
    seconds, rounds = (2, 3) if args.quick else (args.seconds, args.rounds)
    wrk_runner.wrk_binary()
    root = Path(tempfile.mkdtemp(prefix="tidegate-bench-schemas-"))
    gateway: Server | None = None
    try:
        gateway = start_gateway(root / "data", root, 0)
        key = setup(gateway.url)
        body = root / "body.json"
        body.write_bytes(orjson.dumps({"records": [{"value": order(i)} for i in range(RECORDS)]}))
        for side in SIDES:  # warm-up: compile, caches, first segment
            wrk_runner.run(
                "produce_file",
                gateway.url,
                [key, side, str(body)],
                connections=CONNECTIONS,
                seconds=1,
                pid=gateway.pid,
            )
        slices: dict[str, list[Slice]] = {side: [] for side in SIDES}
        for side in rotation(rounds):
            slices[side].append(
                wrk_runner.run(
                    "produce_file",
                    gateway.url,
                    [key, side, str(body)],
                    connections=CONNECTIONS,
                    seconds=seconds,
                    pid=gateway.pid,
                )
            )
        report({side: Totals(s) for side, s in slices.items()}, len(body.read_bytes()))
    finally:
        if gateway is not None:
            gateway.stop()
        shutil.rmtree(root, ignore_errors=True)


def report(totals: dict[str, Totals], body_bytes: int) -> None:
    print(
        f"batched produce, {RECORDS} records of the 15-field order ({body_bytes} B a body), "
        f"{CONNECTIONS} connections, 1 partition, fsync"
    )
    print(
        f"{'topic':<22} {'req/s':>8} {'records/s':>10} {'cpu us/req':>11} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'vs plain':>9}"
    )
    plain = totals["plain"]
    for side in SIDES:
        t = totals[side]
        name = {"plain": "no schema", "json": "JSON Schema", "avro": "Avro"}[side]
        print(
            f"{name:<22} {t.rps:>8.0f} {t.rps * RECORDS:>10.0f} "
            f"{t.server_cpu_us_per_request:>11.0f} {t.percentile_ms(0.5):>7.2f} "
            f"{t.percentile_ms(0.99):>7.2f} {t.rps / plain.rps:>9.2f}"
        )
    for side in ("json", "avro"):
        t = totals[side]
        by_rps = t.rps / plain.rps
        by_cpu = plain.server_cpu_us_per_request / t.server_cpu_us_per_request
        verdict = "PASS" if min(by_rps, by_cpu) >= AIM else "MISS"
        print(
            f"aim: {side} keeps >= {AIM:.0%} of plain throughput: {by_rps:.2f} by req/s, "
            f"{by_cpu:.2f} by CPU per request  {verdict}"
        )


if __name__ == "__main__":
    main()

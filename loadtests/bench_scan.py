"""Produce-body scanning: the C scanner against the reference path, per body shape.

Run with `make bench-scan` (`python -m loadtests.bench_scan`). Each shape is a
100-record body of about 100-byte values, read into packed records per
partition by the C scanner (`batching.scanned`) and by the reference
(`batching.checked`: validation, partitioner, packing), in alternating rounds
(ABBA) so that a noisy neighbour slows both alike. Before each timing the two
answers are compared, so a shape the scanner declines is reported as such.
Printed: the median CPU µs per body of each side, and their ratio. Every loop is
bounded in count and time.
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import time
from collections.abc import Callable, Sequence
from functools import partial

import orjson

from gateway.http.jsonlimits import JsonLimits
from gateway.records.batching import JSON, Bounds, checked, scanned
from gateway.records.fastpath import built
from gateway.records.partitioner import RoundRobin
from storage.records import TopicConfig, TopicInfo, ValueFormat

RECORDS = 100
NOW = 1_764_000_000_000
BOUNDS = Bounds(JsonLimits(), 10_000, 1 << 20)


def _value(i: int) -> dict[str, object]:
    return {"id": i, "user": f"user-{i % 97}", "kind": "click", "n": [1, 2, 3], "ok": True}


def _floats(i: int) -> dict[str, object]:
    return {"id": i, "temp": 21.5 + i / 7, "lat": 52.520008, "lon": 13.404954, "ratio": 1e-3}


HEADERS = [["trace-id", "4bf92f3577b34da6a3ce929d0e0e4736"], ["source", "checkout"]]


def shapes() -> dict[str, tuple[TopicInfo, bytes]]:
    """Each shape's topic and body."""
    json_topic = TopicInfo("t~json", 1, TopicConfig(), 0)
    keyed = TopicInfo("t~keyed", 8, TopicConfig(), 0)
    strings = TopicInfo("t~strings", 1, TopicConfig(value_format=ValueFormat.STRING), 0)
    binary = TopicInfo("t~binary", 1, TopicConfig(value_format=ValueFormat.BINARY), 0)

    def body(
        records: Sequence[object], *, indent: int | None = None, spaced: bool = False
    ) -> bytes:
        if spaced or indent:
            return json.dumps({"records": records}, indent=indent).encode()
        return orjson.dumps({"records": records})

    plain = [{"value": _value(i)} for i in range(RECORDS)]
    return {
        "plain (compact, no headers)": (json_topic, body(plain)),
        "headers as pairs": (
            json_topic,
            body([{"value": _value(i), "headers": HEADERS} for i in range(RECORDS)]),
        ),
        "headers as an object": (
            json_topic,
            body([{"value": _value(i), "headers": dict(HEADERS)} for i in range(RECORDS)]),
        ),
        "float values": (json_topic, body([{"value": _floats(i)} for i in range(RECORDS)])),
        "json.dumps (spaces)": (json_topic, body(plain, spaced=True)),
        "indented, \\u escapes": (
            json_topic,
            body([{"value": {**_value(i), "city": "Zürich"}} for i in range(RECORDS)], indent=2),
        ),
        "keyed, 8 partitions, headers": (
            keyed,
            body(
                [
                    {"key": f"order-{i}", "value": _value(i), "headers": HEADERS}
                    for i in range(RECORDS)
                ]
            ),
        ),
        "string topic, escapes": (
            strings,
            body([{"value": f'line {i}\n\t"quoted" é'} for i in range(RECORDS)]),
        ),
        "binary topic": (
            binary,
            body(
                [
                    {"value": base64.b64encode(orjson.dumps(_value(i))).decode()}
                    for i in range(RECORDS)
                ]
            ),
        ),
    }


def _per_call(fn: Callable[[], object], seconds: float, limit: int) -> float:
    """CPU µs per call of `fn` (this process's CPU time, which a busy neighbour
    does not inflate as it does wall time), run for about `seconds` of wall time
    and at most `limit` calls."""
    calls = 0
    start, cpu = time.perf_counter(), time.process_time()
    while calls < limit:
        fn()
        calls += 1
        if calls % 20 == 0 and time.perf_counter() - start > seconds:
            break
    return (time.process_time() - cpu) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6, help="ABBA rounds per shape")
    parser.add_argument("--seconds", type=float, default=0.15, help="per side per round")
    args = parser.parse_args()
    fast = built()
    if fast is None:
        raise SystemExit("the C extension is not built (make deps)")
    print(f"{'shape (100 records)':34} {'bytes':>7} {'C µs':>8} {'reference µs':>13} {'ratio':>6}")
    for name, (info, body) in shapes().items():
        round_robin = RoundRobin()
        c_side = partial(scanned, fast, body, info, BOUNDS, round_robin, NOW)
        reference = partial(checked, JSON, body, {}, info, BOUNDS, round_robin, NOW)
        answer = c_side()
        if answer is None:
            print(f"{name:34} {len(body):>7}  declined by the C scanner")
            continue
        expected = reference()
        assert (answer.groups, answer.order) == (expected.groups, expected.order), name
        times: dict[str, list[float]] = {"c": [], "reference": []}
        for i in range(args.rounds):
            pair: list[tuple[str, Callable[[], object]]] = [("c", c_side), ("reference", reference)]
            for side, fn in pair if i % 2 == 0 else reversed(pair):
                times[side].append(_per_call(fn, args.seconds, 100_000))
        c_us, ref_us = statistics.median(times["c"]), statistics.median(times["reference"])
        print(f"{name:34} {len(body):>7} {c_us:>8.1f} {ref_us:>13.1f} {ref_us / c_us:>5.1f}x")


if __name__ == "__main__":
    main()

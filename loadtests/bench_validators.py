"""Which JSON Schema validator the gateway uses, measured: jsonschema-rs against fastjsonschema.

Run with `python -m loadtests.bench_validators`. Each candidate checks the
same 1,000 stored order values (loadtests/order_schema.py: 15 fields, about
400 bytes) for validity, from the JSON text the log stores (so parsing the
text is part of the cost), in alternating rounds (ABBA) so that a noisy
neighbour slows every side alike. Printed: the median CPU µs per value. The
Avro checks of the same values, by fastavro and by the gateway's translation
of the Avro schema into JSON Schema run by jsonschema-rs (`avro_json`), follow,
then the fast check produce runs first (`fast_types`: the C scanner checking
each value against a compiled form of the schema while it reads it, no Python
object per JSON value), beside the C scan of the same one-record body alone.
Every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import fastavro
import fastavro.validation
import fastjsonschema
import jsonschema_rs
import orjson

from gateway.records.fastpath import FastPaths, built
from gateway.schemas.fast_types import ValueCheck
from gateway.schemas.formats import SchemaType
from gateway.schemas.validators import compile_validator
from loadtests.order_schema import AVRO_SCHEMA, JSON_SCHEMA, order
from storage.records import PackedRecords

VALUES = [orjson.dumps(order(i)) for i in range(1000)]


def candidates() -> dict[str, Callable[[bytes], bool]]:
    rs = jsonschema_rs.validator_for(JSON_SCHEMA)
    fast = fastjsonschema.compile(JSON_SCHEMA)
    avro = fastavro.parse_schema(AVRO_SCHEMA)

    def parse_only(text: bytes) -> bool:
        return orjson.loads(text) is not None

    def jsonschema_rs_valid(text: bytes) -> bool:
        return bool(rs.is_valid(orjson.loads(text)))

    def fastjsonschema_valid(text: bytes) -> bool:
        try:
            fast(orjson.loads(text))
        except fastjsonschema.JsonSchemaException:
            return False
        return True

    def fastavro_valid(text: bytes) -> bool:
        return bool(fastavro.validation.validate(orjson.loads(text), avro, raise_errors=False))

    avro_rs = compile_validator(SchemaType.AVRO, AVRO_SCHEMA)

    def avro_as_json_schema_valid(text: bytes) -> bool:
        return avro_rs.is_valid(orjson.loads(text))

    sides: dict[str, Callable[[bytes], bool]] = {
        "orjson.loads only": parse_only,
        "jsonschema-rs": jsonschema_rs_valid,
        "fastjsonschema": fastjsonschema_valid,
        "fastavro (Avro)": fastavro_valid,
        "Avro as JSON Schema": avro_as_json_schema_valid,
    }
    speedups = built()
    json_check = compile_validator(SchemaType.JSON, JSON_SCHEMA).value_check
    if speedups is not None and json_check is not None and avro_rs.value_check is not None:
        sides |= {
            "C scan only": scanned_with(speedups, None),
            "C scan + check (JSON)": scanned_with(speedups, json_check),
            "C scan + check (Avro)": scanned_with(speedups, avro_rs.value_check),
        }
    return sides


def scanned_with(fast: FastPaths, check: ValueCheck | None) -> Callable[[bytes], bool]:
    """The C scan of a one-record body holding the value, checked against `check`."""
    compiled = None if check is None else fast.compile_schema(check.root)

    def valid(text: bytes) -> bool:
        body = b'{"records":[{"value":' + text + b"}]}"
        limit = 1 << 20
        return (
            fast.scan_produce(
                body, 0, 1, 1, limit, 64, limit, limit, 0, 0, PackedRecords, schema=compiled
            )
            is not None
        )

    return valid


def cpu_us_per_value(check: Callable[[bytes], bool]) -> float:
    start = time.process_time()
    for text in VALUES:
        if not check(text):
            raise AssertionError("a valid value was refused")
    return (time.process_time() - start) * 1e6 / len(VALUES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    args = parser.parse_args()
    sides = candidates()
    names = list(sides)
    timings: dict[str, list[float]] = {name: [] for name in names}
    deadline = time.monotonic() + args.max_seconds
    for r in range(args.rounds):
        order_ = names if r % 2 == 0 else names[::-1]
        for name in order_:
            timings[name].append(cpu_us_per_value(sides[name]))
        if time.monotonic() > deadline:
            break
    print(f"{'validator':<20} {'CPU µs/value':>12}  (median of {len(timings[names[0]])} rounds)")
    for name in names:
        print(f"{name:<20} {statistics.median(timings[name]):>12.2f}")


if __name__ == "__main__":
    main()

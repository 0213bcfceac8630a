"""Record values of a schema-bound topic checked against their schema, all or nothing.

A topic whose config names a `value_schema` (a subject) takes only records whose
value is valid under a version of it: the request's (the latest live one, or the
version the `Tidegate-Schema-Version` header pins), or the one a record pins
with `schema_version`. Every failure of every record is listed (record index,
a JSON pointer into the record, the message) up to `MAX_SCHEMA_ERRORS`, with the
count of the rest, and nothing is appended. A record that passes carries the id
of the schema it passed in the reserved header `tidegate-schema-id` (a header the
client sent under that name is replaced), which fetch and streams return with it.

Two ways, one answer. The reference: produce resolves the versions
(`versions_needed`, then `ValueSchemas.bound`) and calls `validated` on the
reference path's records. The fast one, for a JSON body the C scanner takes (it
declines any record that pins a version, or names the reserved header):
`scan_checked` has the scanner check every value against the schema's compiled
check (`ValueSchema.value_check`) while it reads the body, with no Python object
per JSON value; when the schema has no check or the check refuses a value, the
scan without it and the validator's verdict on each value (read with orjson)
decide. When every value is valid the C `add_header` adds the schema id header
to the scanner's packed records. When any is not, it answers None and the
reference path writes the 422. Differential tests hold the ways to the same
records and the check to the validator's verdicts
(tests/gateway/records/test_speedups.py).
"""

from __future__ import annotations

import functools
import json
import struct
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from gateway.http.problems import GatewayError, ProblemType
from gateway.http.value_schemas import (
    SCHEMA_ID_HEADER,
    SCHEMA_VERSION_HEADER,
    ValueCheck,
    ValueSchema,
)
from gateway.records.batching import Appendable, Bounds, scanned
from gateway.records.fastpath import FastPaths
from gateway.records.partitioner import RoundRobin
from gateway.records.validation import ParsedBatch
from storage.records import PackedRecords, TopicInfo

MAX_SCHEMA_ERRORS = 100
"""Schema failures listed in one 422 (`errors_not_shown` counts the rest)."""

CACHED_CHECKS = 1024
"""Compiled value checks kept per process, one per schema in use that has one."""

_ID_NAME = SCHEMA_ID_HEADER


def json_value(text: bytes) -> Any:
    """A stored JSON value as Python (stdlib json for numbers past orjson's 64 bits)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def pinned_version(headers: Mapping[str, str]) -> int | None:
    """The request's pin (`Tidegate-Schema-Version: n`), or None for the latest."""
    text = headers.get(SCHEMA_VERSION_HEADER)
    if text is None or text.strip() == "latest":
        return None
    text = text.strip()
    if not text.isdigit() or not 1 <= int(text) <= 2**31 - 1:
        raise GatewayError(
            ProblemType.INVALID_PARAMETER,
            f"{SCHEMA_VERSION_HEADER} is a version number from 1 or 'latest'",
            parameter=SCHEMA_VERSION_HEADER,
        )
    return int(text)


def versions_needed(parsed: ParsedBatch, request_version: int | None) -> set[int | None]:
    """The versions the batch's records are to be checked against."""
    if not parsed.versions:
        return {request_version}
    return {request_version if v is None else v for v in parsed.versions}


def validated(
    parsed: ParsedBatch,
    schemas: Mapping[int | None, ValueSchema],
    request_version: int | None,
) -> ParsedBatch:
    """`parsed` with every record's value checked and its schema id header set; raises
    422 `invalid-records` listing the failures, and then nothing is appended."""
    errors: list[dict[str, Any]] = []
    hidden = 0
    records = []
    versions = parsed.versions or [None] * len(parsed.records)
    for index, (record, pinned) in enumerate(zip(parsed.records, versions, strict=True)):
        schema = schemas[request_version if pinned is None else pinned]
        value = None if record.value is None else json_value(record.value)
        room = MAX_SCHEMA_ERRORS - len(errors)
        found = schema.violations(value, limit=max(room, 1))
        if found:
            if room > 0:
                errors += [
                    {
                        "record": index,
                        "pointer": f"/records/{index}/value{where}",
                        "message": message,
                        "schema_version": schema.version,
                    }
                    for where, message in found[:room]
                ]
                hidden += max(0, len(found) - room)
            else:
                hidden += len(found)
            continue
        headers = tuple(h for h in record.headers if h[0] != _ID_NAME)
        records.append(record._replace(headers=(*headers, (_ID_NAME, b"%d" % schema.schema_id))))
    if errors:
        bad = len({e["record"] for e in errors})
        more = f" (and {hidden} more not shown)" if hidden else ""
        raise GatewayError(
            ProblemType.INVALID_RECORDS,
            f"{bad} record(s) do not match the topic's schema{more}; nothing was appended",
            errors=errors,
            errors_not_shown=hidden,
        )
    return ParsedBatch(records, parsed.partitions, [], [], parsed.versions)


_ID_BYTES = _ID_NAME.encode()
_HEAD = struct.Struct(">qiiH")  # the packed record head (storage.records.PackedRecords)
_NAME = struct.Struct(">H")
_VALUE = struct.Struct(">i")


def scan_checked(
    fast: FastPaths,
    body: bytes,
    info: TopicInfo,
    bounds: Bounds,
    placement: RoundRobin,
    now_ms: int,
    schema: ValueSchema,
) -> Appendable | None:
    """The scanner's packed records of `body` with the schema id header on every record
    (added by `fast.add_header`, the twin of `with_header`), when every value is valid
    under `schema`; None to let the reference path decide."""
    check = schema.value_check
    compiled = None if check is None else compiled_check(fast, check)
    batch = None
    if compiled is not None:
        batch = scanned(fast, body, info, bounds, placement, now_ms, compiled)
    if batch is None:
        batch = scanned(fast, body, info, bounds, placement, now_ms)
        if batch is None or not values_valid(body, schema):
            return None
    header = _NAME.pack(len(_ID_BYTES)) + _ID_BYTES
    raw_id = b"%d" % schema.schema_id
    header += _VALUE.pack(len(raw_id)) + raw_id
    groups = []
    for p, packed in batch.groups:
        data = fast.add_header(packed.data, packed.record_count, header)
        if data is None:
            return None
        groups.append((p, packed._replace(data=data)))
    return Appendable(batch.count, groups, batch.order)


def values_valid(body: bytes, schema: ValueSchema) -> bool:
    """Whether every record's value in `body` (a body the scanner took) is valid under
    `schema` by the validator's verdict, and no record names the reserved header."""
    try:
        records = orjson.loads(body)["records"]
    except orjson.JSONDecodeError:
        return False  # numbers past 64 bits: the reference path reads them
    is_valid = schema.is_valid
    for record in records:
        headers = record.get("headers")
        if isinstance(headers, dict) and _ID_NAME in headers:
            return False  # the reference path replaces it
        if isinstance(headers, list) and any(pair[0] == _ID_NAME for pair in headers):
            return False
        if not is_valid(record.get("value")):
            return False
    return True


def compiled_check(fast: FastPaths, check: ValueCheck) -> object | None:
    """The C form of `check` (compiled once per process), or None if the C cannot
    hold it."""
    return _compiled(fast.compile_schema, check)


@functools.lru_cache(maxsize=CACHED_CHECKS)
def _compiled(compile_schema: Callable[[object], object], check: ValueCheck) -> object | None:
    try:
        return compile_schema(check.root)
    except (ValueError, OverflowError, MemoryError):
        return None


def with_header(packed: PackedRecords, header: bytes) -> PackedRecords:
    """`packed` with the packed `header` appended to every record's headers (the
    reference of `_speedups.add_header`)."""
    data = packed.data
    view = memoryview(data)
    head, name, value = _HEAD.unpack_from, _NAME.unpack_from, _VALUE.unpack_from
    count_at = _HEAD.size - 2
    out = bytearray()
    cursor = 0
    for _ in range(packed.record_count):
        _ts, klen, vlen, count = head(data, cursor)
        start = cursor
        cursor += _HEAD.size + (klen if klen > 0 else 0) + (vlen if vlen > 0 else 0)
        for _h in range(count):
            cursor += 2 + name(data, cursor)[0]
            cursor += 4 + value(data, cursor)[0]
        out += view[start : start + count_at]
        out += (count + 1).to_bytes(2, "big")
        out += view[start + _HEAD.size : cursor]
        out += header
    return packed._replace(data=bytes(out))

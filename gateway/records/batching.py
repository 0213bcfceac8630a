"""A produce request's body turned into one packed batch per partition, ready for the log.

`checked` is the reference path: the body read and checked whole by
`validation` (every bad record reported at once), each record placed by the
partitioner, each partition's records packed. `scanned` is the fast path for
JSON bodies: the C scanner does all of that in one pass with no per-record
Python objects, or declines, and then `checked` decides. Both give the same
`Appendable` for every body the scanner takes (a differential property test).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.http.bodies import check_limits, malformed_json, refuse_too_deep
from gateway.http.jsonlimits import JsonLimits, needs_scan
from gateway.http.problems import GatewayError, ProblemType
from gateway.records.fastpath import FastPaths
from gateway.records.partitioner import RoundRobin, choose_partition
from gateway.records.validation import (
    BodyError,
    ParsedBatch,
    RecordError,
    RecordTexts,
    check_batch,
    check_record,
    read_records,
)
from gateway.records.values import FORMAT_CODES, InvalidValue, raw_body_value
from storage.records import NewRecord, PackedRecords, TopicInfo, pack_records

JSON = "application/json"
NDJSON = "application/x-ndjson"
RAW = ("application/octet-stream", "text/plain")
ACCEPTED = [JSON, NDJSON, *RAW]


@dataclass(frozen=True, slots=True)
class Bounds:
    """What bounds one request: JSON limits, records per request, bytes per record."""

    json: JsonLimits
    max_records: int
    max_record_bytes: int


@dataclass(slots=True)
class Appendable:
    """A checked request, ready for the log: each partition's records packed, the
    partitions in order of first appearance, and each record's partition when there
    are several (the reply lists offsets in request order)."""

    count: int
    groups: list[tuple[int, PackedRecords]]
    order: list[int] | None


def media_type(content_type: str) -> str:
    """The request's media type, or 415 naming what is accepted."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/ndjson":
        return NDJSON
    if media in ACCEPTED:
        return media
    raise GatewayError(
        ProblemType.UNSUPPORTED_MEDIA_TYPE,
        f"send one of {', '.join(ACCEPTED)}, not {media or 'no Content-Type'}",
        accepted=ACCEPTED,
    )


def scanned(
    fast: FastPaths,
    body: bytes,
    info: TopicInfo,
    bounds: Bounds,
    round_robin: RoundRobin,
    now_ms: int,
    schema: object | None = None,
) -> Appendable | None:
    """A JSON body read straight into packed records by the C scanner, or None when
    it declines (the reference path then decides and writes every error). With
    `schema` (a `compile_schema` result) it also declines unless every value passes.

    Keyless records of a topic with several partitions draw from the topic's
    round-robin counter, as `choose_partition` does.
    """
    limits = bounds.json
    result = fast.scan_produce(
        body,
        FORMAT_CODES[info.config.value_format],
        info.partitions,
        bounds.max_records,
        bounds.max_record_bytes,
        limits.max_depth,
        limits.max_items,
        limits.max_string_bytes,
        now_ms,
        round_robin.peek(info.name),
        PackedRecords,
        schema=schema,
    )
    if result is None:
        return None
    groups, order, drawn = result
    if drawn:
        round_robin.advance(info.name, drawn)
    return Appendable(len(order) if order else groups[0][1].record_count, groups, order)


def checked(
    media: str,
    body: bytes,
    params: Mapping[str, str],
    info: TopicInfo,
    bounds: Bounds,
    round_robin: RoundRobin,
    now_ms: int,
) -> Appendable:
    """The reference path: the body checked whole, placed, packed per partition."""
    return placed(parsed_body(media, body, params, info, bounds), info, round_robin, now_ms)


def parsed_body(
    media: str, body: bytes, params: Mapping[str, str], info: TopicInfo, bounds: Bounds
) -> ParsedBatch:
    """The body's records checked whole (every bad record in one problem), not yet placed."""
    if media in RAW:
        return raw_record(body, params, info, bounds.max_record_bytes)
    return batch_of(media, body, info, bounds)


def placed(
    parsed: ParsedBatch, info: TopicInfo, round_robin: RoundRobin, now_ms: int
) -> Appendable:
    """Checked records placed by the partitioner and packed per partition."""
    partitions = [
        choose_partition(
            explicit=explicit,
            key=record.key,
            partitions=info.partitions,
            topic=info.name,
            round_robin=round_robin,
        )
        for record, explicit in zip(parsed.records, parsed.partitions, strict=True)
    ]
    return packed_groups(parsed.records, partitions, now_ms)


def batch_of(media: str, body: bytes, info: TopicInfo, bounds: Bounds) -> ParsedBatch:
    """A JSON or NDJSON body's records, every one checked; raises one problem naming
    every bad record (or the body's own problem)."""
    limits = bounds.json
    if needs_scan(body, limits):
        check_limits(body, limits)  # values and string lengths, before anything is parsed
    try:
        texts = read_records(body, ndjson=media == NDJSON, limits=limits)
        _count(texts, bounds.max_records, body, limits)
        batch = check_batch(
            texts,
            info.config.value_format,
            info.partitions,
            max_record_bytes=bounds.max_record_bytes,
            schema_bound=info.config.value_schema is not None,
        )
    except BodyError as exc:
        raise body_problem(exc, body, limits) from None
    raise_record_errors(batch.errors, batch.oversize, bounds.max_record_bytes)
    return batch


def _count(texts: RecordTexts, max_records: int, body: bytes, limits: JsonLimits) -> None:
    if not texts.texts:
        raise GatewayError(
            ProblemType.INVALID_RECORDS,
            "the request holds no records",
            errors=[{"pointer": "/records", "message": "at least one record is required"}],
        )
    if len(texts.texts) > max_records:
        check_limits(body, limits)  # a body too deep is 413 for its depth, whatever else
        raise GatewayError(
            ProblemType.TOO_MANY_RECORDS,
            f"{len(texts.texts)} records in one request; at most {max_records} are accepted",
            limit=max_records,
        )


def body_problem(exc: BodyError, body: bytes, limits: JsonLimits) -> GatewayError:
    """The problem for a body that is unusable as a whole. Depth is checked first, so
    a body too deep is always 413, whatever else is wrong with it."""
    if exc.kind == "too-deep":
        refuse_too_deep(body, limits)
    check_limits(body, limits)
    if exc.kind == "malformed":
        return malformed_json(body, exc.position or 0, str(exc))
    return GatewayError(
        ProblemType.INVALID_BODY,
        str(exc),
        errors=[{"pointer": p, "message": str(exc)} for p in exc.pointers],
    )


def raise_record_errors(errors: list[RecordError], oversize: list[RecordError], limit: int) -> None:
    if not errors and not oversize:
        return
    listed = sorted(errors + oversize, key=lambda e: e.record)
    if errors:
        bad = len({e.record for e in listed})
        raise GatewayError(
            ProblemType.INVALID_RECORDS,
            f"{bad} record(s) are invalid; nothing was appended",
            errors=[e.to_dict() for e in listed],
        )
    raise GatewayError(
        ProblemType.RECORD_TOO_LARGE,
        f"{len(oversize)} record(s) exceed the max_record_bytes of {limit}; nothing was appended",
        limit=limit,
        errors=[e.to_dict() for e in listed],
    )


def raw_record(body: bytes, params: Mapping[str, str], info: TopicInfo, limit: int) -> ParsedBatch:
    """One record whose value is the whole body; key/partition/timestamp from the query,
    checked by the same rules as a JSON record's fields."""
    fields: dict[str, Any] = {}
    if "key" in params:
        fields["key"] = params["key"]
    for name in ("partition", "timestamp"):
        if name in params:
            text = params[name]
            if not text.lstrip("-").isdigit() or len(text) > 20:
                raise GatewayError(
                    ProblemType.INVALID_PARAMETER, f"{name} must be an integer", parameter=name
                )
            fields[name] = int(text)
    try:
        value = raw_body_value(body, info.config.value_format)
    except InvalidValue as exc:
        raise GatewayError(
            ProblemType.INVALID_RECORDS,
            str(exc),
            errors=[{"record": 0, "pointer": "/records/0/value", "message": str(exc)}],
        ) from None
    # The query's fields as a record text, so that one set of rules checks them.
    result = check_record(orjson.dumps(fields), 0, info.config.value_format, info.partitions)
    if isinstance(result, list):
        raise_record_errors(result, [], limit)
        raise AssertionError("unreachable")
    record = result.record._replace(value=value)
    if record.size() > limit:
        message = f"record is {record.size()} bytes; limit {limit}"
        raise_record_errors([], [RecordError(0, "/records/0", message)], limit)
    return ParsedBatch([record], [result.partition], [], [], [None])


def packed_groups(
    records: Sequence[NewRecord], partitions: Sequence[int], now_ms: int
) -> Appendable:
    """Checked, placed records packed per partition, in order of first appearance."""
    try:
        first = partitions[0]
        if partitions.count(first) == len(partitions):
            return Appendable(len(records), [(first, pack_records(records, now_ms=now_ms))], None)
        groups: dict[int, list[NewRecord]] = {}
        for record, p in zip(records, partitions, strict=True):
            groups.setdefault(p, []).append(record)
        packed = [(p, pack_records(rs, now_ms=now_ms)) for p, rs in groups.items()]
    except (ValueError, OverflowError, struct.error) as exc:
        raise GatewayError(
            ProblemType.INVALID_RECORDS, f"the records cannot be stored: {exc}", errors=[]
        ) from None
    return Appendable(len(records), packed, list(partitions))

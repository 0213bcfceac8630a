"""Produce: `POST /v1/topics/{topic}/records`, all-or-nothing validation, per-record offsets.

Accepted bodies: `application/json` (`{"records": [...]}`),
`application/x-ndjson` (one record object a line), and `application/octet-stream`
or `text/plain` (the body is one record's value; `key`, `partition`,
`timestamp` as query parameters).

The whole request is validated before anything is appended; every bad record
is reported at once. Records are grouped by partition and each partition's
records are appended as one batch, the partitions concurrently. The append
runs to completion even if the client disconnects, and an `Idempotency-Key`
makes a retried request append once (see `idempotency`).
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response

from gateway.http.bodies import check_limits, parse_json, read_body, refuse_too_deep
from gateway.http.jsonlimits import JsonLimits, needs_scan, too_deep
from gateway.http.problems import GatewayError, ProblemType
from gateway.http.runtime import Runtime
from gateway.records import _speedups, codecs
from gateway.records.codecs import ParsedBatch, RecordError, TooDeep
from gateway.records.idempotency import IdempotencyStore, Verdict, fingerprint, state_key, valid_key
from gateway.records.partitioner import RoundRobin, choose_partition
from storage.backend import LogStore
from storage.errors import StorageError
from storage.records import (
    AppendResult,
    NewRecord,
    PackedRecords,
    TopicInfo,
    pack_records,
)
from tenants.principal import Scope
from tenants.quotas import check_count

log = logging.getLogger("tidegate.produce")

JSON = "application/json"
NDJSON = "application/x-ndjson"
RAW = ("application/octet-stream", "text/plain")
ACCEPTED = [JSON, NDJSON, *RAW]


def media_type_of(request: Request) -> str:
    """The request's media type, or 415 naming what is accepted."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media in (JSON, NDJSON, *RAW) or media == "application/ndjson":
        return NDJSON if media == "application/ndjson" else media
    raise GatewayError(
        ProblemType.UNSUPPORTED_MEDIA_TYPE,
        f"send one of {', '.join(ACCEPTED)}, not {media or 'no Content-Type'}",
        accepted=ACCEPTED,
    )


def record_objects(media: str, body: bytes, limits: JsonLimits) -> list[Any]:
    """The record objects of a JSON or NDJSON body (not yet validated).

    A JSON body's records are not yet checked for depth: `validate` bounds each
    record's nesting as it goes (`record_depth`), which spares a walk over the
    whole document. Every refusal here checks depth first, so a body too deep
    is always 413, whatever else is wrong with it.
    """
    if media == JSON:
        doc = parse_json(body, limits, check_depth=False)
        if not isinstance(doc, dict) or not isinstance(doc.get("records"), list):
            _refuse_if_too_deep(doc, body, limits)
            raise GatewayError(
                ProblemType.INVALID_BODY,
                'the body must be {"records": [...]}',
                errors=[{"pointer": "/records", "message": "a list of records is required"}],
            )
        extra = sorted(doc.keys() - {"records"})
        if extra:
            _refuse_if_too_deep(doc, body, limits)
            raise GatewayError(
                ProblemType.INVALID_BODY,
                f"unknown field {extra[0]!r}",
                errors=[{"pointer": f"/{k}", "message": "unknown field"} for k in extra],
            )
        objects: list[Any] = doc["records"]
        return objects
    if needs_scan(body, limits):
        check_limits(body, limits)  # once for the whole body, not per line
    objects = []
    for number, line in enumerate(body.split(b"\n"), start=1):
        if not line.strip():
            continue
        objects.append(parse_json(line, limits, line_offset=number - 1))
    return objects


def record_depth(media: str, limits: JsonLimits) -> int | None:
    """How deep each record object may nest: a JSON body's records sit two levels
    down (`{"records": [...]}`); NDJSON lines were checked whole when parsed."""
    return limits.max_depth - 2 if media == JSON else None


def _refuse_if_too_deep(doc: object, body: bytes, limits: JsonLimits) -> None:
    if too_deep(doc, limits.max_depth):
        refuse_too_deep(body, limits)


def validate(
    objects: Sequence[Any],
    info: TopicInfo,
    max_records: int,
    limit: int,
    *,
    body: bytes,
    limits: JsonLimits,
    max_depth: int | None,
) -> ParsedBatch:
    """Every record checked; raises one problem listing every bad record.

    `max_depth` bounds each record object's nesting (None: already checked); a
    record past it refuses the whole body with 413, as a JSON limit does.
    """
    if not objects:
        raise GatewayError(
            ProblemType.INVALID_RECORDS,
            "the request holds no records",
            errors=[{"pointer": "/records", "message": "at least one record is required"}],
        )
    if len(objects) > max_records:
        if max_depth is not None and any(too_deep(o, max_depth) for o in objects):
            refuse_too_deep(body, limits)
        raise GatewayError(
            ProblemType.TOO_MANY_RECORDS,
            f"{len(objects)} records in one request; at most {max_records} are accepted",
            limit=max_records,
        )
    try:
        batch = codecs.parse_records(
            objects,
            info.config.value_format,
            info.partitions,
            max_bytes=limit,
            max_depth=max_depth,
        )
    except TooDeep:
        refuse_too_deep(body, limits)
    raise_record_errors(batch.errors, batch.oversize, limit)
    return batch


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


def raw_record(body: bytes, params: QueryParams, info: TopicInfo, limit: int) -> ParsedBatch:
    """One record whose value is the whole body; key/partition/timestamp from the query."""
    obj: dict[str, Any] = {}
    if "key" in params:
        obj["key"] = params["key"]
    for name in ("partition", "timestamp"):
        if name in params:
            text = params[name]
            if not text.lstrip("-").isdigit() or len(text) > 20:
                raise GatewayError(
                    ProblemType.INVALID_PARAMETER,
                    f"{name} must be an integer",
                    parameter=name,
                )
            obj[name] = int(text)
    try:
        value = codecs.raw_value(body, info.config.value_format)
    except codecs.InvalidValue as exc:
        raise GatewayError(
            ProblemType.INVALID_RECORDS,
            str(exc),
            errors=[{"record": 0, "pointer": "/records/0/value", "message": str(exc)}],
        ) from None
    obj["value"] = None
    result = codecs.parse_record(obj, 0, info.config.value_format, info.partitions)
    if isinstance(result, list):
        raise_record_errors(result, [], limit)
        raise AssertionError("unreachable")
    record = result.record._replace(value=value)
    if record.size() > limit:
        raise_record_errors(
            [],
            [RecordError(0, "/records/0", f"record is {record.size()} bytes; limit {limit}")],
            limit,
        )
    return ParsedBatch([record], [result.partition], [], [])


_OFFSET = b'{"partition":%d,"offset":%d}'


@dataclass(slots=True)
class Appendable:
    """A checked request, ready for the log: each partition's records packed, the
    partitions in order of first appearance, and each record's partition when there
    are several (the reply lists offsets in request order)."""

    count: int
    groups: list[tuple[int, PackedRecords]]
    order: list[int] | None


def scan_json(
    body: bytes,
    info: TopicInfo,
    limits: JsonLimits,
    max_records: int,
    round_robin: RoundRobin,
    record_limit: int,
    now_ms: int,
) -> Appendable | None:
    """A JSON body read straight into packed records by the C fast path, or None when
    the body needs the Python path (which also writes every error).

    The fast path takes a body only when its answer is byte for byte the Python
    path's: see `_speedups.c`. Keyless records of a topic with several partitions
    draw from the topic's round-robin counter, as `choose_partition` does.
    """
    scanned = _speedups.scan_produce(
        body,
        codecs.FORMAT_CODES[info.config.value_format],
        info.partitions,
        max_records,
        record_limit,
        limits.max_depth,
        limits.max_items,
        limits.max_string_bytes,
        now_ms,
        round_robin.peek(info.name),
    )
    if scanned is None:
        return None
    groups, order, drawn = scanned
    if drawn:
        round_robin.advance(info.name, drawn)
    packed = [(p, PackedRecords(data, n, first, last)) for p, data, n, first, last in groups]
    return Appendable(len(order) if order else packed[0][1].record_count, packed, order)


def packed_groups(
    records: Sequence[NewRecord], partitions: Sequence[int], now_ms: int
) -> Appendable:
    """Validated records packed per partition (the Python path's `scan_json`)."""
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


async def append_groups(log_store: LogStore, name: str, batch: Appendable) -> bytes:
    """Append each partition's records as one batch, all handed to the log at once;
    the reply's JSON array of `{"partition", "offset"}` in request order."""
    if batch.order is None:  # one partition
        partition, packed = batch.groups[0]
        one = await log_store.append_packed(name, partition, packed)
        return _speedups.offsets_json(partition, one.base_offset, one.count)
    results = await log_store.append_batches(name, batch.groups)
    failures = [r for r in results if isinstance(r, StorageError)]
    if failures:
        appended = [r for r in results if isinstance(r, AppendResult)]
        if appended:
            log.error(
                "append to %r failed on some partitions after others succeeded: %s",
                name,
                [(r.partition, r.base_offset, r.count) for r in appended],
            )
        raise failures[0]
    next_offset = {r.partition: r.base_offset for r in results if isinstance(r, AppendResult)}
    entries: list[bytes] = []
    for p in batch.order:
        entries.append(_OFFSET % (p, next_offset[p]))
        next_offset[p] += 1
    return b"[" + b",".join(entries) + b"]"


def offsets_json(partition: int, offsets: range) -> bytes:
    """The JSON array of one partition's consecutive offsets (the reference for
    `_speedups.offsets_json`, which the reply uses)."""
    return b"[" + b",".join(_OFFSET % (partition, o) for o in offsets) + b"]"


async def produce(request: Request, runtime: Runtime, round_robin: RoundRobin) -> Response:
    target = await runtime.topic_request(request, Scope.TOPICS_WRITE)
    principal, topic, log_store, name = target.principal, target.topic, target.log, target.stored
    info = await log_store.get_topic(name)
    media = media_type_of(request)
    settings = runtime.settings
    limits_json, max_records = runtime.json_limits, settings.max_batch_records
    idem_key = request.headers.get("idempotency-key")
    if idem_key is not None and not valid_key(idem_key):
        raise GatewayError(
            ProblemType.INVALID_PARAMETER,
            "Idempotency-Key must be 1 to 255 printable ASCII characters",
            parameter="Idempotency-Key",
        )
    body = await read_body(request, settings.max_body_bytes)
    tenant = principal.tenant
    quotas = runtime.quotas
    limits = await quotas.limits(tenant)
    record_limit = info.config.max_record_bytes
    if limits.max_record_bytes is not None:
        record_limit = min(record_limit, limits.max_record_bytes)
    now_ms = time.time_ns() // 1_000_000
    fast = (
        scan_json(body, info, limits_json, max_records, round_robin, record_limit, now_ms)
        if media == JSON
        else None
    )
    if fast is None:
        batch = _checked(
            media,
            body,
            request.query_params,
            info,
            limits_json,
            max_records,
            round_robin,
            record_limit,
            now_ms,
        )
    else:
        batch = fast
    if limits.max_storage_bytes is not None:
        stored = await runtime.usage.stored(log_store, tenant)
        check_count("max_storage_bytes", stored.bytes, len(body), limits.max_storage_bytes)
    await quotas.admit_produce(tenant, len(body))
    runtime.usage.traffic[tenant].produced(len(body), batch.count)

    if idem_key is None:
        # Every batch is handed to the log before the first suspension, so a
        # cancelled caller abandons the reply, never the appends.
        reply = await runtime.drain.appending(_append(runtime, name, batch))
        return Response(reply, media_type="application/json")

    store = IdempotencyStore(
        runtime.state,
        ttl_s=settings.idempotency_ttl_s,
        pending_ttl_s=settings.idempotency_pending_ttl_s,
    )
    key = state_key(principal.tenant, topic, idem_key)
    fp = fingerprint(
        request.method,
        request.url.path,
        request.url.query,
        request.headers.get("content-type", ""),
        body,
    )
    claim = await store.claim(key, fp)
    if claim.verdict is Verdict.MISMATCH:
        raise GatewayError(
            ProblemType.IDEMPOTENCY_KEY_REUSED,
            "this Idempotency-Key was used with a different request; use a new key",
        )
    if claim.verdict is Verdict.IN_PROGRESS:
        raise GatewayError(
            ProblemType.IDEMPOTENCY_IN_PROGRESS,
            "a request with this Idempotency-Key is in progress; retry shortly",
            headers={"Retry-After": "1"},
        )
    if claim.verdict is Verdict.REPLAY:
        assert claim.reply is not None
        runtime.metrics.idempotent_replays += 1
        return Response(
            claim.reply.body,
            status_code=claim.reply.status,
            media_type="application/json",
            headers={"Idempotent-Replayed": "true"},
        )
    reply = await runtime.drain.run_to_completion(
        _append_once(runtime, store, key, fp, name, batch)
    )
    return Response(reply, media_type="application/json")


def _checked(
    media: str,
    body: bytes,
    params: QueryParams,
    info: TopicInfo,
    limits: JsonLimits,
    max_records: int,
    round_robin: RoundRobin,
    record_limit: int,
    now_ms: int,
) -> Appendable:
    """The Python path: every record validated (all errors at once), partitioned, packed."""
    if media in RAW:
        parsed = raw_record(body, params, info, record_limit)
    else:
        objects = record_objects(media, body, limits)
        parsed = validate(
            objects,
            info,
            max_records,
            record_limit,
            body=body,
            limits=limits,
            max_depth=record_depth(media, limits),
        )
    records = parsed.records
    if info.partitions == 1:
        partitions = [0] * len(records)  # explicit partitions were checked against the count
    else:
        partitions = [
            choose_partition(
                explicit=explicit,
                key=record.key,
                partitions=info.partitions,
                topic=info.name,
                round_robin=round_robin,
            )
            for record, explicit in zip(records, parsed.partitions, strict=True)
        ]
    return packed_groups(records, partitions, now_ms)


async def _append(runtime: Runtime, name: str, batch: Appendable) -> bytes:
    runtime.metrics.inflight_appends += 1
    try:
        offsets = await append_groups(runtime.log, name, batch)
    finally:
        runtime.metrics.inflight_appends -= 1
    runtime.metrics.produced_records += batch.count
    runtime.metrics.produced_requests += 1
    return b'{"offsets":' + offsets + b"}"


async def _append_once(
    runtime: Runtime,
    store: IdempotencyStore,
    key: str,
    fp: str,
    name: str,
    batch: Appendable,
) -> bytes:
    try:
        reply = await _append(runtime, name, batch)
    except BaseException:
        # Nothing, or not all, was appended: free the key so a retry can proceed.
        try:
            await store.release(key)
        except Exception:
            log.exception("could not release Idempotency-Key claim")
        raise
    try:
        await store.complete(key, fp, 200, reply)
    except Exception:
        # The records are appended; a retry within the claim's lifetime gets 409.
        log.exception("could not store the reply of an idempotent produce")
    return reply

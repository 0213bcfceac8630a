"""Produce: `POST /v1/topics/{topic}/records`, all-or-nothing validation, per-record offsets.

Accepted bodies: `application/json` (`{"records": [...]}`),
`application/x-ndjson` (one record object a line), and `application/octet-stream`
or `text/plain` (the body is one record's value; `key`, `partition`,
`timestamp` as query parameters).

The whole request is checked before anything is appended (`batching`); every
bad record is reported at once. Each partition's records are appended as one
batch, every partition's handed to the log at once. The append runs to
completion even if the client disconnects, and an `Idempotency-Key` makes a
retried request append once, also after a crash or a partial failure (see
`idempotency`).
"""

from __future__ import annotations

import logging
import time

from starlette.requests import Request
from starlette.responses import Response

from gateway.http.bodies import read_body
from gateway.http.headers import header
from gateway.http.metrics import TopicSeries
from gateway.http.params import query_of
from gateway.http.problems import GatewayError, ProblemType
from gateway.http.responses import JsonBytes
from gateway.http.runtime import Runtime
from gateway.http.value_schemas import SCHEMA_VERSION_HEADER, ValueSchema
from gateway.records.batching import (
    JSON,
    Appendable,
    Bounds,
    checked,
    media_type,
    parsed_body,
    placed,
    scanned,
)
from gateway.records.fastpath import FastPaths
from gateway.records.idempotency import (
    IdempotencyStore,
    Verdict,
    fingerprint,
    placement_start,
    request_identity,
    state_key,
    valid_key,
)
from gateway.records.partitioner import RoundRobin
from gateway.records.rendering import offsets_json
from gateway.records.schema_check import (
    pinned_version,
    scan_checked,
    validated,
    versions_needed,
)
from storage.backend import LogStore
from storage.errors import SchemaRegistryError, StorageError
from storage.records import AppendResult, TopicInfo
from tenants.principal import Scope
from tenants.quotas import check_count

log = logging.getLogger("tidegate.produce")


async def append_groups(
    log_store: LogStore,
    name: str,
    batch: Appendable,
    fast: FastPaths | None,
    identity: bytes | None = None,
) -> bytes:
    """Append each partition's records as one batch, all handed to the log at once;
    the reply's JSON array of `{"partition", "offset"}` in request order.

    With `identity`, a partition that already holds the request's batch answers
    with its offsets, so a retry's reply is the first success's."""
    if batch.order is None:  # one partition
        partition, packed = batch.groups[0]
        one = await log_store.append_packed(name, partition, packed, identity=identity)
        _check_count(one, packed.record_count)
        if fast is not None:
            return fast.offsets_json(partition, one.base_offset, one.count)
        offsets = range(one.base_offset, one.base_offset + one.count)
        return offsets_json((partition, o) for o in offsets)
    results = await log_store.append_batches(name, batch.groups, identity=identity)
    # Comprehensions rather than one loop of checks: a keyed batch spans most of a
    # topic's partitions, and this runs for each.
    done = [r for r in results if isinstance(r, AppendResult)]
    if len(done) < len(results):
        if done:
            log.error(
                "append to %r failed on some partitions after others succeeded: %s",
                name,
                [(r.partition, r.base_offset, r.count) for r in done],
            )
        raise next(r for r in results if not isinstance(r, AppendResult))
    if identity is not None:  # only a held batch can answer for this one's records
        for result, (_, packed) in zip(done, batch.groups, strict=True):
            _check_count(result, packed.record_count)
    if fast is not None:
        return fast.placed_offsets_json(batch.order, done)
    next_offset = {r.partition: r.base_offset for r in done}
    placed = []
    for p in batch.order:
        placed.append((p, next_offset[p]))
        next_offset[p] += 1
    return offsets_json(placed)


def _check_count(result: AppendResult, count: int) -> None:
    """A held batch answers for this one only if it holds as many records; the
    identity covers the body and the partition count, so anything else is a bug."""
    if result.count != count:
        raise StorageError(
            f"partition {result.partition} holds this request's batch with {result.count}"
            f" records, not {count}"
        )


async def produce(
    request: Request, runtime: Runtime, round_robin: RoundRobin, fast: FastPaths | None
) -> Response:
    target = await runtime.topic_request(request, Scope.TOPICS_WRITE)
    principal, topic, log_store, name = target.principal, target.topic, target.log, target.stored
    info = await log_store.get_topic(name)
    content_type = header(request, b"content-type") or ""
    media = media_type(content_type)
    settings = runtime.settings
    idem_key = header(request, b"idempotency-key")
    if idem_key is not None and not valid_key(idem_key):
        raise GatewayError(
            ProblemType.INVALID_PARAMETER,
            "Idempotency-Key must be 1 to 255 printable ASCII characters",
            parameter="Idempotency-Key",
        )
    body = await read_body(request, settings.max_body_bytes)
    tenant = principal.tenant
    idem: tuple[str, str, bytes] | None = None  # key, fingerprint, identity
    placement = round_robin
    if idem_key is not None:
        fp = fingerprint(
            request.method,
            request.url.path,
            request.url.query,
            content_type,
            body,
            request.headers.get(SCHEMA_VERSION_HEADER),
        )
        idem = (idem_key, fp, request_identity(tenant, topic, idem_key, fp, info.partitions))
        # Keyless records placed from the identity: a retry puts them where this one does.
        placement = RoundRobin.starting_at(info.name, placement_start(idem[2]))
    quotas = runtime.quotas
    limits = await quotas.limits(tenant)
    record_limit = info.config.max_record_bytes
    if limits.max_record_bytes is not None:
        record_limit = min(record_limit, limits.max_record_bytes)
    bounds = Bounds(runtime.json_limits, settings.max_batch_records, record_limit)
    now_ms = time.time_ns() // 1_000_000
    batch = None
    subject = info.config.value_schema
    if subject is not None:
        # Every value checked against the subject's schema: during the C scan when it
        # takes the body and every value is valid, else on the reference path (which
        # writes the 422 listing every failure, and any other error in its order).
        if fast is not None and media == JSON:
            schema = await _request_schema(runtime, request, principal.namespace, subject)
            if schema is not None:
                batch = scan_checked(fast, body, info, bounds, placement, now_ms, schema)
        if batch is None:
            batch = await _schema_checked(
                runtime,
                request,
                principal.namespace,
                subject,
                media,
                body,
                info,
                bounds,
                placement,
                now_ms,
            )
    elif fast is not None and media == JSON:
        batch = scanned(fast, body, info, bounds, placement, now_ms)
    if batch is None:
        batch = checked(media, body, query_of(request), info, bounds, placement, now_ms)
    if limits.max_storage_bytes is not None:
        stored = await runtime.usage.stored(log_store, principal.namespace)
        check_count("max_storage_bytes", stored.bytes, len(body), limits.max_storage_bytes)
    await quotas.admit_produce(tenant, len(body))
    runtime.usage.traffic[tenant].produced(len(body), batch.count)
    topic_series = runtime.metrics.topic(name, tenant, topic)

    if idem is None:
        # Every batch is handed to the log before the first suspension, so a
        # cancelled caller abandons the reply, never the appends.
        reply = await runtime.drain.appending(_append(runtime, name, batch, fast))
        _count(topic_series, batch.count, len(body))
        return JsonBytes(reply)

    store = IdempotencyStore(
        runtime.state,
        ttl_s=settings.idempotency_ttl_s,
        pending_ttl_s=settings.idempotency_pending_ttl_s,
    )
    idem_key, fp, identity = idem
    # Under the topic's id, not its name: a topic created again under the name has
    # none of the old one's replies.
    key = state_key(principal.namespace, info.topic_id, idem_key)
    claim = await store.claim(key, fp)
    if claim.verdict is Verdict.MISMATCH:
        raise GatewayError(
            ProblemType.IDEMPOTENCY_KEY_REUSED,
            "this Idempotency-Key was used with a different request; use a new key",
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
        _append_once(runtime, store, key, fp, name, batch, fast, identity)
    )
    _count(topic_series, batch.count, len(body))
    return JsonBytes(reply)


def _count(series: TopicSeries, records: int, nbytes: int) -> None:
    series.produced_records += records
    series.produced_bytes += nbytes


async def _request_schema(
    runtime: Runtime, request: Request, namespace: str, subject: str
) -> ValueSchema | None:
    """The version the request's records are checked against on the fast path; None
    when the pin or the subject is in error (the reference path then raises it, after
    the body's own errors)."""
    try:
        version = pinned_version(request.headers)
        return await runtime.value_schemas.bound(namespace, subject, version)
    except (GatewayError, SchemaRegistryError):
        return None


async def _schema_checked(
    runtime: Runtime,
    request: Request,
    namespace: str,
    subject: str,
    media: str,
    body: bytes,
    info: TopicInfo,
    bounds: Bounds,
    placement: RoundRobin,
    now_ms: int,
) -> Appendable:
    """The body checked as every body is, then each value against its schema version
    (read from the registry now: a change applies to the next request)."""
    parsed = parsed_body(media, body, query_of(request), info, bounds)
    request_version = pinned_version(request.headers)
    schemas = {
        v: await runtime.value_schemas.bound(namespace, subject, v)
        for v in versions_needed(parsed, request_version)
    }
    return placed(validated(parsed, schemas, request_version), info, placement, now_ms)


async def _append(
    runtime: Runtime,
    name: str,
    batch: Appendable,
    fast: FastPaths | None,
    identity: bytes | None = None,
) -> bytes:
    runtime.metrics.inflight_appends += 1
    try:
        offsets = await append_groups(runtime.log, name, batch, fast, identity)
    finally:
        runtime.metrics.inflight_appends -= 1
    metrics = runtime.metrics
    metrics.produced_records += batch.count
    metrics.produce_requests += 1
    return b'{"offsets":' + offsets + b"}"


async def _append_once(
    runtime: Runtime,
    store: IdempotencyStore,
    key: str,
    fp: str,
    name: str,
    batch: Appendable,
    fast: FastPaths | None,
    identity: bytes,
) -> bytes:
    # On a failure the claim stays: a retry appends the partitions that lack the
    # request's batch (the others answer with theirs), and another body is still 422.
    reply = await _append(runtime, name, batch, fast, identity)
    try:
        await store.complete(key, fp, 200, reply)
    except Exception:
        # The records are appended; a retry is answered by the partitions instead.
        log.exception("could not store the reply of an idempotent produce")
    return reply

"""Fetch and long-poll: `GET /v1/topics/{topic}/partitions/{p}/records`.

A fetch starts at `offset` (an integer, `earliest` or `latest`; `-1` and `-2`
are Kafka's spellings of `latest` and `earliest`) or at the first record at or
after `timestamp`, and returns up to `max_records` / `max_bytes`. With
`max_wait_ms` and nothing to return yet, it waits on the log's wake-up
(`LogStore.wait_for`, never a sleep loop) and answers as soon as
a record arrives, or with an empty list at the deadline. While waiting it
watches the connection: a client that goes away frees its waiter at once.
Shutdown answers every waiting fetch immediately (empty result).

Bounds: `max_wait_ms` is clamped to `TIDEGATE_MAX_WAIT_MS`; at most
`TIDEGATE_MAX_LONG_POLLS` fetches wait at once (more get 503 + Retry-After).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from starlette.requests import Request
from starlette.responses import Response

from gateway.http.longpoll import ClientGone, wait_interruptibly
from gateway.http.params import int_param, parse_int, query_of
from gateway.http.problems import GatewayError, ProblemType
from gateway.http.recordjson import records_json
from gateway.http.rendered import RenderedRecords
from gateway.http.responses import JsonBytes
from gateway.http.runtime import Runtime
from gateway.http.woken import WokenReads
from gateway.records.fastpath import FastPaths
from gateway.records.values import FORMAT_CODES
from storage.backend import LogStore
from storage.records import FetchResult, Record, ValueFormat
from tenants.principal import Scope


def partition_param(request: Request, partitions: int) -> int:
    text = request.path_params["partition"]
    number = parse_int(text)
    if number is None:
        raise GatewayError(
            ProblemType.INVALID_PARAMETER,
            "the partition must be an integer",
            parameter="partition",
        )
    if not 0 <= number < partitions:
        raise GatewayError(
            ProblemType.PARTITION_NOT_FOUND,
            f"the topic has partitions 0..{partitions - 1}, not {number}",
            partition=number,
            partitions=partitions,
        )
    return number


OFFSET_ALIASES = {"-1": "latest", "-2": "earliest"}
"""Kafka's ListOffsets sentinels (LATEST_TIMESTAMP = -1, EARLIEST_TIMESTAMP = -2), accepted
as the names they stand for, so a Kafka user's `offset=-1` means what it means there."""


async def start_offset(log: LogStore, name: str, partition: int, params: Mapping[str, str]) -> int:
    """Where the fetch starts: `offset` (int, earliest, latest, -1, -2) or `timestamp`."""
    offset = params.get("offset")
    if offset is not None:
        offset = OFFSET_ALIASES.get(offset, offset)
    timestamp = params.get("timestamp")
    if offset is not None and timestamp is not None:
        raise GatewayError(
            ProblemType.INVALID_PARAMETER,
            "give offset or timestamp, not both",
            parameter="timestamp",
        )
    if timestamp is not None:
        when = parse_int(timestamp)
        if when is None or when < 0:
            raise GatewayError(
                ProblemType.INVALID_PARAMETER,
                "timestamp must be milliseconds since the epoch",
                parameter="timestamp",
            )
        return await log.offset_for_time(name, partition, when)
    if offset is None or offset == "earliest":
        return (await log.offsets(name, partition)).start_offset
    if offset == "latest":
        return (await log.offsets(name, partition)).end_offset
    number = parse_int(offset)
    if number is None or number < 0:
        raise GatewayError(
            ProblemType.INVALID_PARAMETER,
            "offset must be an integer >= 0, 'earliest' (or -2) or 'latest' (or -1)",
            parameter="offset",
        )
    return number


async def wait_for_data(
    request: Request, runtime: Runtime, name: str, partition: int, offset: int, wait_s: float
) -> bool:
    """Wait until `partition` has a record at `offset`; False at the deadline or on drain.
    Raises ClientGone if the client disconnects first (see `longpoll`)."""
    return await wait_interruptibly(
        request, runtime, lambda: runtime.log.wait_for(name, {partition: offset}, wait_s)
    )


_ZERO_TAIL = b',"next_offset":0,"end_offset":0}'


def records_head(
    records: Sequence[Record], partition: int, fmt: ValueFormat, fast: FastPaths | None
) -> bytes:
    """The start of a fetch reply, `{"records":[...]`, in C where it can."""
    body = None if fast is None else fast.render_fetch(records, partition, FORMAT_CODES[fmt], 0, 0)
    if body is None:  # no fast path, or records the C renderer leaves to the reference
        return b'{"records":' + records_json(records, partition, fmt)
    return body[: -len(_ZERO_TAIL)]


def fetch_reply(
    result: FetchResult,
    partition: int,
    runtime: Runtime,
    rendered: RenderedRecords[bytes],
    fmt: ValueFormat,
    fast: FastPaths | None,
) -> Response:
    metrics = runtime.metrics
    metrics.fetched_records += len(result.records)
    metrics.fetch_requests += 1
    head = rendered.head(
        result.records,
        partition,
        FORMAT_CODES[fmt],
        lambda records: records_head(records, partition, fmt, fast),
    )
    return JsonBytes(
        b'%b,"next_offset":%d,"end_offset":%d}' % (head, result.next_offset, result.end_offset)
    )


async def fetch(
    request: Request,
    runtime: Runtime,
    rendered: RenderedRecords[bytes],
    fast: FastPaths | None,
    woken: WokenReads,
) -> Response:
    target = await runtime.topic_request(request, Scope.TOPICS_READ)
    log, name = target.log, target.stored
    info = await log.get_topic(name)
    partition = partition_param(request, info.partitions)
    params = query_of(request)
    settings = runtime.settings
    max_records = int_param(
        params, "max_records", 500, minimum=1, maximum=settings.max_fetch_records
    )
    max_bytes = int_param(
        params, "max_bytes", 1024 * 1024, minimum=1, maximum=settings.max_fetch_bytes
    )
    max_wait_ms = int_param(params, "max_wait_ms", 0, minimum=0, maximum=settings.max_wait_ms)
    offset = await start_offset(log, name, partition, params)
    tenant = target.principal.tenant
    quotas = runtime.quotas
    await quotas.admit_consume(tenant)

    result = await log.read(name, partition, offset, max_records=max_records, max_bytes=max_bytes)
    if not result.records and max_wait_ms > 0 and not runtime.drain.started:
        try:
            # A waiting fetch holds one of the tenant's connections for its wait.
            with quotas.connection(tenant, await quotas.limits(tenant)):
                arrived = await wait_for_data(
                    request, runtime, name, partition, result.next_offset, max_wait_ms / 1000
                )
        except ClientGone:
            return Response(status_code=204)  # nobody is listening; nothing is sent
        if arrived and not runtime.drain.started:
            result = await woken.read(
                log,
                name,
                partition,
                result.next_offset,
                max_records=max_records,
                max_bytes=max_bytes,
            )
    await quotas.charge_consume(tenant, result.bytes)
    runtime.usage.traffic[tenant].consumed(result.bytes, len(result.records))
    series = runtime.metrics.topic(name, tenant, target.topic)
    series.fetched_records += len(result.records)
    series.fetched_bytes += result.bytes
    return fetch_reply(result, partition, runtime, rendered, info.config.value_format, fast)

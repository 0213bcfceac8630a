"""Group fetch: `GET /v1/groups/{group}/records?member_id=…&cursor=…`.

Reads the member's assigned partitions from its acknowledged position (see
`positions.py`), the committed offsets, or the group's reset policy, fairly:
the budget (`max_records`, `max_bytes`) is shared out over the partitions,
starting at a partition that rotates with every reply, so one busy partition
cannot starve the others; what a partition leaves unused goes to the next in
a second pass. With nothing to read it long-polls every assigned partition at
once (`GroupStore.wait_for_records`) until `max_wait_ms`.

The whole request is bounded: `max_wait_ms` counts from its start, and what
waits on the group (its lock, behind a join storm) may use at most
`COORDINATION_MARGIN_S` past it. Cut short, the fetch answers what the group
as read says: 409 if the member must rejoin, else its records (its
heartbeat's write waits for its next request). The position write is not
cut short: it waits only for the store (the end of the loop's pass, whose
fetches' positions are written together; a commit's sync at worst), never
for a rebalance, and a 409 there would send a member that
did nothing wrong to rejoin. A rebalance that happens during the wait
answers 409 after it, or at once on the next fetch.

The fetch is a heartbeat. The reply is `{"records": [{"topic", ...}],
"cursor", "generation", "assignment"}`; records are rendered by the floor's
`recordjson` (the same shape as a partition fetch, with the topic).
"""

from __future__ import annotations

import asyncio
import functools
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.coordinator import membership
from gateway.coordinator.assignors import TopicPartition
from gateway.coordinator.membership import Group, ResetPolicy
from gateway.coordinator.service import GroupService, Loaded
from gateway.groups import positions
from gateway.groups.names import GroupRequest
from gateway.http.longpoll import ClientGone, wait_interruptibly
from gateway.http.names import client_name
from gateway.http.params import int_param, query_of
from gateway.http.problems import GatewayError, ProblemType
from gateway.http.recordjson import FORMAT_CODES, FetchRenderer, topic_records_json
from gateway.http.rendered import RenderedRecords
from gateway.http.responses import JsonBytes
from gateway.http.runtime import Runtime
from storage.errors import GroupNotFound, MemberFenced, OffsetOutOfRange, TopicNotFound
from storage.groups import GroupStore, MemberPosition
from storage.records import Record, TopicInfo, ValueFormat

PASSES = 2  # a first fair share each, then what is left to those that had more

COORDINATION_MARGIN_S = 0.05
"""How far past `max_wait_ms` a fetch may wait on its group (the lock, a write)."""


def assignment_json(group: Group, member_id: str, namespace: str) -> list[dict[str, object]]:
    return partitions_json(group.assigned(member_id), namespace)


def partitions_json(assigned: Sequence[TopicPartition], namespace: str) -> list[dict[str, object]]:
    return [
        {"topic": client_name(namespace, tp.topic), "partition": tp.partition} for tp in assigned
    ]


async def _resolve(
    runtime: Runtime,
    group: Group,
    starts: Mapping[TopicPartition, int | None],
) -> dict[TopicPartition, int]:
    """Partitions without a position start where the group's reset policy says."""
    out: dict[TopicPartition, int] = {}
    for tp, offset in starts.items():
        if offset is None:
            info = await runtime.log.offsets(tp.topic, tp.partition)
            offset = info.start_offset if group.reset is ResetPolicy.EARLIEST else info.end_offset
        out[tp] = offset
    return out


async def _topics(runtime: Runtime, names: Sequence[str]) -> dict[str, TopicInfo | None]:
    """Each topic as the log has it now (None: it is gone)."""
    out: dict[str, TopicInfo | None] = {}
    for name in names:
        try:
            out[name] = await runtime.log.get_topic(name)
        except TopicNotFound:
            out[name] = None
    return out


class Reads:
    """The records of one reply, read fairly within the budget; each partition's
    rendered once for every reader of the same records (`rendered`)."""

    def __init__(
        self,
        runtime: Runtime,
        namespace: str,
        formats: Mapping[str, ValueFormat],
        rendered: RenderedRecords[bytes],
        renderer: FetchRenderer | None,
    ) -> None:
        self.runtime = runtime
        self.rendered = rendered
        self.renderer = renderer
        self.namespace = namespace
        self.formats = formats
        self.parts: list[bytes] = []
        self.count = 0
        self.bytes = 0

    async def _read(self, tp: TopicPartition, offset: int, max_records: int, max_bytes: int) -> int:
        """Read and render; returns the next offset of `tp`."""
        log = self.runtime.log
        try:
            result = await log.read(
                tp.topic, tp.partition, offset, max_records=max_records, max_bytes=max_bytes
            )
        except OffsetOutOfRange as exc:
            # Retention went past the position (or the log was cut): read on from the
            # nearest offset that exists, as Kafka's reset does.
            offset = exc.earliest if offset < exc.earliest else exc.latest
            result = await log.read(
                tp.topic, tp.partition, offset, max_records=max_records, max_bytes=max_bytes
            )
        if result.records:
            fmt = self.formats[tp.topic]

            def render(records: Sequence[Record]) -> bytes:
                topic = client_name(self.namespace, tp.topic)
                return topic_records_json(topic, records, tp.partition, fmt, self.renderer)

            # The stored topic is the partition's, whose record objects key the cache.
            self.parts.append(
                self.rendered.head(result.records, tp.partition, FORMAT_CODES[fmt], render)
            )
            self.count += len(result.records)
            self.bytes += result.bytes
        return result.next_offset if result.records else offset

    async def fair(
        self,
        starts: dict[TopicPartition, int],
        order: list[TopicPartition],
        max_records: int,
        max_bytes: int,
    ) -> dict[TopicPartition, int]:
        after = dict(starts)
        hungry = list(order)
        for _ in range(PASSES):
            if not hungry:
                break
            still: list[TopicPartition] = []
            for i, tp in enumerate(hungry):
                records_left = max_records - self.count
                bytes_left = max_bytes - self.bytes
                if records_left <= 0 or bytes_left <= 0:
                    return after
                share = max(1, records_left // (len(hungry) - i))
                share_bytes = max(1, bytes_left // (len(hungry) - i))
                before = self.count
                after[tp] = await self._read(tp, after[tp], share, share_bytes)
                if self.count - before >= share:
                    still.append(tp)  # it may hold more
            hungry = still
        return after

    async def exactly(
        self, starts: dict[TopicPartition, int], until: Mapping[TopicPartition, int]
    ) -> None:
        """A retry: the records of the lost reply again, partition by partition."""
        for tp, start in sorted(starts.items()):
            end = until.get(tp, start)
            if end > start:
                await self._read(tp, start, end - start, self.runtime.settings.max_fetch_bytes)

    def body(self, cursor: str, generation: int, assignment: bytes) -> bytes:
        """The reply: the records, then `cursor`, `generation` and `assignment` (JSON)."""
        return b"".join(
            (
                b'{"records":[',
                b",".join(self.parts),
                b'],"cursor":',
                orjson.dumps(cursor),
                b',"generation":%d,"assignment":' % generation,
                assignment,
                b"}",
            )
        )


ASSIGNMENTS = 4096
"""Assignments `Assignments` keeps rendered (the most recent)."""


class Assignments:
    """Assignments as the reply's JSON, by the partitions and the tenant's namespace
    (all the rendering depends on), so a member's fetches render its assignment
    once, not once a request. A cache of a pure function, bounded."""

    def __init__(self) -> None:
        # FIFO by insertion: an OrderedDict lets the oldest go in O(1).
        self._known: OrderedDict[tuple[str, tuple[TopicPartition, ...]], bytes] = OrderedDict()

    def json(self, assigned: tuple[TopicPartition, ...], namespace: str) -> bytes:
        key = (namespace, assigned)
        known = self._known.get(key)
        if known is not None:
            return known
        rendered = orjson.dumps(partitions_json(assigned, namespace))
        if len(self._known) >= ASSIGNMENTS:
            self._known.popitem(last=False)
        self._known[key] = rendered
        return rendered


@dataclass(frozen=True, slots=True)
class Shared:
    """What the group fetches of one process share: the rendered records (kept for
    the next reader of the same records: another group, a retry), the position
    codec, the records feature's C renderer when it is on (else None: the
    floor's reference renders), and the members' rendered assignments."""

    rendered: RenderedRecords[bytes]
    codec: positions.Codec
    renderer: FetchRenderer | None = None
    assignments: Assignments = field(default_factory=Assignments)


async def group_fetch(
    request: Request, runtime: Runtime, service: GroupService, shared: Shared
) -> Response:
    target = await GroupRequest.of(request, runtime, consuming=True)  # a heartbeat too
    clock = asyncio.get_running_loop().time
    began = clock()
    params = query_of(request)
    member_id = params.get("member_id")
    if not member_id:
        raise GatewayError(
            ProblemType.INVALID_PARAMETER,
            "member_id is required: join with POST /v1/groups/{group}/members first",
            parameter="member_id",
        )
    settings = runtime.settings
    max_records = int_param(
        params, "max_records", 500, minimum=1, maximum=settings.max_fetch_records
    )
    max_bytes = int_param(
        params, "max_bytes", 1024 * 1024, minimum=1, maximum=settings.max_fetch_bytes
    )
    max_wait_ms = int_param(params, "max_wait_ms", 0, minimum=0, maximum=settings.max_wait_ms)
    cursor = params.get("cursor") or None
    named = None if cursor is None else positions.cursor_generation(cursor)
    if cursor is not None and named is None:
        raise GatewayError(ProblemType.INVALID_PARAMETER, "cursor is malformed", parameter="cursor")
    stored = target.stored
    deadline = began + max_wait_ms / 1000
    bound = deadline + COORDINATION_MARGIN_S  # what waiting on the group may use

    # One read for the group, the member's position and the commits (the hot path).
    view = await runtime.groups.member_view(stored, member_id)
    if view.group is None:
        raise GroupNotFound(stored)
    first = Loaded(view.group.version, service.decoded(stored, view.group.membership.body))
    loaded = await service.heartbeat(stored, member_id, named, loaded=first, deadline=bound)
    # Each subscribed topic read once: for the partition-count refresh and the formats.
    topics = await _topics(runtime, loaded.group.topics)
    counts = {name: 0 if info is None else info.partitions for name, info in topics.items()}
    refreshed = await service.refresh(stored, loaded, deadline=bound, counts=counts)
    if refreshed is not loaded:  # a partition count changed just now: 409
        _check(refreshed.group, stored, member_id, named)
        loaded = refreshed
    group = loaded.group
    assigned = group.assigned(member_id)
    reading = {tp.topic for tp in assigned}
    for topic in reading:
        target.require_topic(topic)
    formats: dict[str, ValueFormat] = {}
    for topic in reading:
        info = topics.get(topic)
        if info is None:  # gone: the refresh's new generation was not written in time
            raise _rebalancing(stored, member_id, group.generation)
        formats[topic] = info.config.value_format
    stored_position = view.position
    position = (
        shared.codec.decode(stored_position.generation, stored_position.body)
        if stored_position is not None and stored_position.generation == group.generation
        else None
    )
    try:
        planned = positions.plan(position, cursor, assigned)
    except positions.UnknownCursor:
        raise GatewayError(
            ProblemType.UNKNOWN_CURSOR,
            "the cursor is not the latest reply's of this member; fetch without a cursor "
            "to read from the last acknowledged position",
            parameter="cursor",
        ) from None

    tenant = target.principal.tenant
    quotas = runtime.quotas
    await quotas.admit_consume(tenant)
    namespace = target.principal.namespace
    reads = Reads(runtime, namespace, formats, shared.rendered, shared.renderer)
    assignment = shared.assignments.json(assigned, namespace)
    if planned.retry_of is not None and planned.until is not None:
        retry = planned.retry_of
        await reads.exactly(planned.start, planned.until)
        return await _reply(
            runtime, reads, retry.answered or "", group.generation, assignment, tenant
        )

    committed = {TopicPartition(c.topic, c.partition): c.offset for c in view.committed}
    starts = await _resolve(runtime, group, positions.start_offsets(planned, assigned, committed))
    seq = (position.seq if position is not None else 0) + 1
    order = sorted(assigned)
    if order:
        turn = seq % len(order)
        order = order[turn:] + order[:turn]
    after = await reads.fair(starts, order, max_records, max_bytes)
    if reads.count == 0 and deadline > clock() and order and not runtime.drain.started:
        watched = {(tp.topic, tp.partition): offset for tp, offset in after.items()}
        try:
            with quotas.connection(tenant, await quotas.limits(tenant)):
                arrived = await _long_poll(
                    request, runtime, service, stored, loaded, member_id, watched, (deadline, bound)
                )
        except ClientGone:
            return Response(status_code=204)  # nobody is listening; nothing moves
        if arrived:
            after = await reads.fair(after, order, max_records, max_bytes)
    if (
        reads.count == 0
        and cursor is not None
        and position is not None
        and cursor == position.answered
        and after == position.after
    ):
        # Nothing read and nothing moved: the same cursor names the same position,
        # so nothing is written (an idle member's long polls cost no write).
        return await _reply(runtime, reads, cursor, group.generation, assignment, tenant)
    answered = shared.codec.new_cursor(group.generation, seq)
    moved = positions.Position(
        generation=group.generation,
        seq=seq,
        came_with=cursor,
        answered=answered,
        start=starts,
        after=after,
    )
    try:
        await runtime.groups.put_position(
            stored, member_id, MemberPosition(group.generation, shared.codec.encode(moved))
        )
    except MemberFenced as exc:
        raise _rebalancing(stored, member_id, group.generation, exc.current) from None
    return await _reply(runtime, reads, answered, group.generation, assignment, tenant)


async def _long_poll(
    request: Request,
    runtime: Runtime,
    service: GroupService,
    stored: str,
    loaded: Loaded,
    member_id: str,
    watched: dict[tuple[str, int], int],
    limits: tuple[float, float],
) -> bool:
    """Wait for records on every watched partition until `deadline`; True if some
    arrived (and the member is still in its generation: 409 otherwise, not stale
    records), False at the deadline or the drain.

    A member that joins or leaves meanwhile moves the group to a new generation,
    and the store wakes the wait at once (`wait_for_new_generation`): the answer
    is then 409, not records of an assignment that no longer holds. The wait is
    also cut into stretches that end when the group may change without anyone
    asking: when another member's session runs out (so a member parked here
    learns of that rebalance then, not at its next request) and at half of this
    member's own session (its touch is written, so a poll longer than its
    session does not let it expire while it waits)."""
    clock = asyncio.get_running_loop().time
    deadline, bound = limits  # the reply's, and what waiting on the group may use
    generation = loaded.group.generation
    while True:
        remaining = deadline - clock()
        if remaining <= 0:
            return False
        stretch = min(remaining, _until_the_group_may_change(loaded, member_id, service.clock()))
        wait = functools.partial(
            _records_or_rebalance, runtime.groups, watched, (stored, generation), stretch
        )
        arrived = await wait_interruptibly(request, runtime, wait)
        if runtime.drain.started:
            return False
        fresh = await service.load(stored)
        if fresh is None:  # deleted meanwhile (its members had all expired)
            raise _rebalancing(stored, member_id, generation)
        # A touch if due; 409 if the group moved on (an expiry found here is written).
        loaded = await service.heartbeat(
            stored, member_id, generation, loaded=fresh, deadline=bound
        )
        if arrived:
            return True


async def _records_or_rebalance(
    groups: GroupStore,
    watched: dict[tuple[str, int], int],
    group: tuple[str, int],
    timeout_s: float,
) -> bool:
    """Until records arrive on a watched partition or the group (name, generation)
    leaves that generation, whichever is first, within `timeout_s`; True if records
    arrived. The caller reads the group after either. Both waits are cancelled
    before this returns, so neither outlives the request."""
    name, generation = group
    records = asyncio.ensure_future(groups.wait_for_records(watched, timeout_s))
    moved = asyncio.ensure_future(groups.wait_for_new_generation(name, generation, timeout_s))
    try:
        await asyncio.wait((records, moved), return_when=asyncio.FIRST_COMPLETED)
    finally:
        records.cancel()
        moved.cancel()
    if moved.done() and not moved.cancelled():
        moved.result()  # a store failure is the request's
    return records.done() and not records.cancelled() and records.result()


def _until_the_group_may_change(loaded: Loaded, member_id: str, now_ms: int) -> float:
    """Seconds until another member's session runs out or half of `member_id`'s has
    passed since it was last heard from (at least a millisecond)."""
    moments = [
        m.last_seen_ms
        + (m.session_timeout_ms // 2 if m.member_id == member_id else m.session_timeout_ms + 1)
        for m in loaded.group.members
    ]
    return max(0.001, (min(moments, default=now_ms) - now_ms) / 1000)


def _rebalancing(
    stored: str, member_id: str, generation: int, current: int | None = None
) -> membership.MustRejoin:
    fenced = membership.MustRejoin(
        membership.RejoinReason.REBALANCE_IN_PROGRESS,
        member_id,
        generation,
        generation if current is None else current,
    )
    fenced.group = stored
    return fenced


def _check(group: Group, stored: str, member_id: str, generation: int | None) -> None:
    try:
        membership.check(group, member_id, generation)
    except membership.MustRejoin as exc:
        exc.group = stored
        raise


async def _reply(
    runtime: Runtime,
    reads: Reads,
    cursor: str,
    generation: int,
    assignment: bytes,
    tenant: str,
) -> Response:
    await runtime.quotas.charge_consume(tenant, reads.bytes)
    runtime.metrics.fetched_records += reads.count
    runtime.metrics.fetch_requests += 1
    runtime.usage.traffic[tenant].consumed(reads.bytes, reads.count)
    return JsonBytes(reads.body(cursor, generation, assignment))

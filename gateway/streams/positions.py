"""Where a stream starts, and how a reader names where it is.

A stream follows some or all partitions of a topic. It starts at `from`
(`earliest`, `latest`, or a position list `p:offset,p:offset`), or at the first
record at or after `timestamp`; `partitions` (`0,2,5`) follows a subset. A
position list names the next offset to read in each partition it lists, and
the partitions it lists are the ones followed.

The same position list is the resume token: every Server-Sent Event's `id:`
is the list right after that event, a WebSocket closed by a server shutdown
names it in its `closing` frame, and `from=<token>` (or `Last-Event-ID`)
continues exactly there. Pure: no I/O; `resolve` asks the log for the
offsets that `earliest`, `latest` and `timestamp` stand for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from gateway.http.params import MAX_INT64, parse_int
from gateway.http.problems import GatewayError, ProblemType
from storage.backend import LogStore
from storage.errors import OffsetOutOfRange

MAX_FOLLOWED = 4096
"""Partitions one stream may name (a position list longer than that is refused)."""

Kind = Literal["earliest", "latest", "positions", "timestamp"]


class BadPositions(ValueError):
    """Text that is not a position list."""


def parse_positions(text: str) -> dict[int, int]:
    """`0:42,3:7` as {0: 42, 3: 7}; BadPositions when malformed, repeated or too long."""
    positions: dict[int, int] = {}
    parts = text.split(",")
    if len(parts) > MAX_FOLLOWED:
        raise BadPositions(f"at most {MAX_FOLLOWED} partitions")
    for part in parts:
        number, sep, offset = part.strip().partition(":")
        p, o = parse_int(number), parse_int(offset)
        if not sep or p is None or o is None or p < 0 or o < 0:
            raise BadPositions(f"{part!r} is not partition:offset")
        if p in positions:
            raise BadPositions(f"partition {p} is named twice")
        positions[p] = o
    return positions


def format_positions(positions: Mapping[int, int]) -> str:
    """The position list of `positions`, by partition: what `parse_positions` reads."""
    return ",".join(f"{p}:{positions[p]}" for p in sorted(positions))


def parse_partitions(text: str) -> tuple[int, ...]:
    """`0,2,5` as (0, 2, 5); BadPositions when malformed or repeated."""
    found: list[int] = []
    parts = text.split(",")
    if len(parts) > MAX_FOLLOWED:
        raise BadPositions(f"at most {MAX_FOLLOWED} partitions")
    for part in parts:
        number = parse_int(part.strip())
        if number is None or number < 0:
            raise BadPositions(f"{part!r} is not a partition number")
        if number in found:
            raise BadPositions(f"partition {number} is named twice")
        found.append(number)
    return tuple(found)


@dataclass(frozen=True, slots=True)
class Start:
    """Where a stream starts, as asked; `resolve` turns it into offsets."""

    kind: Kind
    positions: Mapping[int, int] | None = None  # kind "positions"
    timestamp: int | None = None  # kind "timestamp"
    partitions: tuple[int, ...] | None = None  # a subset; None: every partition


def _invalid(parameter: str, detail: str) -> GatewayError:
    return GatewayError(ProblemType.INVALID_PARAMETER, detail, parameter=parameter)


def start_of(
    params: Mapping[str, str], *, resume: str | None = None, resume_name: str = "from"
) -> Start:
    """The start a stream's query asks for (`from`, `timestamp`, `partitions`); `resume`
    (a Last-Event-ID) wins over them. Without any, `latest`. 400 naming the parameter."""
    subset_text = params.get("partitions")
    subset: tuple[int, ...] | None = None
    if subset_text is not None:
        try:
            subset = parse_partitions(subset_text)
        except BadPositions as exc:
            raise _invalid("partitions", f"partitions: {exc}") from None
    if resume is not None:
        try:
            return Start("positions", positions=parse_positions(resume))
        except BadPositions as exc:
            raise _invalid(resume_name, f"{resume_name} is not a resume token: {exc}") from None
    origin = params.get("from")
    timestamp = params.get("timestamp")
    if origin is not None and timestamp is not None:
        raise _invalid("timestamp", "give from or timestamp, not both")
    if timestamp is not None:
        when = parse_int(timestamp)
        if when is None or when < 0:
            raise _invalid("timestamp", "timestamp must be milliseconds since the epoch")
        return Start("timestamp", timestamp=when, partitions=subset)
    if origin is None or origin == "latest":
        return Start("latest", partitions=subset)
    if origin == "earliest":
        return Start("earliest", partitions=subset)
    try:
        positions = parse_positions(origin)
    except BadPositions as exc:
        raise _invalid(
            "from", f"from must be earliest, latest or partition:offset,...: {exc}"
        ) from None
    if subset is not None and set(subset) != set(positions):
        raise _invalid("partitions", "partitions must name the partitions that from lists")
    return Start("positions", positions=positions)


async def resolve(log: LogStore, name: str, partition_count: int, start: Start) -> dict[int, int]:
    """The offset to read next in each followed partition. 404 for a partition the
    topic lacks; 416 for a position past a partition's end (a position before its
    start is left for the stream to report as a gap)."""
    if start.positions is not None:
        followed = tuple(start.positions)
    elif start.partitions is not None:
        followed = start.partitions
    else:
        followed = tuple(range(partition_count))
    for p in followed:
        if p >= partition_count:
            raise GatewayError(
                ProblemType.PARTITION_NOT_FOUND,
                f"the topic has partitions 0..{partition_count - 1}, not {p}",
                partition=p,
                partitions=partition_count,
            )
    out: dict[int, int] = {}
    for p in followed:
        if start.kind == "timestamp":
            assert start.timestamp is not None
            out[p] = await log.offset_for_time(name, p, start.timestamp)
            continue
        info = await log.offsets(name, p)
        if start.kind == "earliest":
            out[p] = info.start_offset
        elif start.kind == "latest":
            out[p] = info.end_offset
        else:
            assert start.positions is not None
            offset = start.positions[p]
            if offset > info.end_offset:
                raise OffsetOutOfRange(p, offset, info.start_offset, info.end_offset)
            out[p] = min(offset, MAX_INT64)
    return out


def on_gap_param(params: Mapping[str, str]) -> bool:
    """True for `on_gap=close` (end the stream after the gap); `continue`, the
    default, reads on from the earliest retained offset."""
    value = params.get("on_gap", "continue")
    if value not in ("continue", "close"):
        raise _invalid("on_gap", "on_gap must be continue or close")
    return value == "close"

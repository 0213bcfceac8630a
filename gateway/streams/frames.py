"""What a stream sends, as text: WebSocket frames and Server-Sent Events.

WebSocket server frames are JSON text: `subscribed` (where the stream starts),
`records` (one partition's records, in order), `gap` (positions no longer
retained), `error` (a problem document, before a close), `closing` (the
server is shutting down; where to resume). Server-Sent Events carry the same
documents, one record per `record` event, each with an `id:` naming the
position right after it. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import orjson

from gateway.http.problems import Problem
from gateway.http.recordjson import record_json, records_json
from gateway.streams.positions import format_positions
from storage.records import Record, ValueFormat


@dataclass(frozen=True, slots=True)
class GapEntry:
    """A followed partition whose position is no longer retained."""

    partition: int
    requested: int
    earliest: int

    def to_dict(self) -> dict[str, int]:
        return {"partition": self.partition, "requested": self.requested, "earliest": self.earliest}


def records_frame(records: Sequence[Record], partition: int, fmt: ValueFormat) -> str:
    """The `records` frame of one partition's records: built once per run of records
    and sent as it is to every subscriber that reads that run."""
    return (b'{"type":"records","records":%b}' % records_json(records, partition, fmt)).decode()


def subscribed_document(positions: Mapping[int, int]) -> dict[str, object]:
    return {"from": format_positions(positions), "partitions": sorted(positions)}


def subscribed_frame(positions: Mapping[int, int]) -> str:
    return orjson.dumps({"type": "subscribed", **subscribed_document(positions)}).decode()


def gap_document(gaps: Sequence[GapEntry]) -> dict[str, object]:
    return {"partitions": [g.to_dict() for g in gaps]}


def gap_frame(gaps: Sequence[GapEntry]) -> str:
    return orjson.dumps({"type": "gap", **gap_document(gaps)}).decode()


def error_frame(problem: Problem) -> str:
    """`{"type": "error", "problem": {...}}`: the problem document nested, since both
    have a `type`."""
    return orjson.dumps({"type": "error", "problem": problem.to_dict()}).decode()


def closing_frame(code: int, reason: str, positions: Mapping[int, int]) -> str:
    return orjson.dumps(
        {"type": "closing", "code": code, "reason": reason, "from": format_positions(positions)}
    ).decode()


# -- Server-Sent Events -------------------------------------------------------------

HEARTBEAT = b": heartbeat\n\n"


def sse_retry(retry_ms: int) -> bytes:
    """The stream's first line, part of its first event: how long a browser waits
    before it reconnects."""
    return b"retry: %d\n" % retry_ms


def sse_event(event: str, data: bytes, event_id: str | None = None) -> bytes:
    """One event; `data` is one line of JSON (orjson never writes a newline)."""
    if event_id is None:
        return b"event: %b\ndata: %b\n\n" % (event.encode(), data)
    return b"event: %b\nid: %b\ndata: %b\n\n" % (event.encode(), event_id.encode(), data)


def sse_context(partition: int, positions: Mapping[int, int]) -> tuple[bytes, bytes]:
    """What the resume tokens of a run of `partition`'s records share: the positions of
    the other partitions before and after it (only `partition`'s offset changes)."""
    before = format_positions({p: o for p, o in positions.items() if p < partition})
    after = format_positions({p: o for p, o in positions.items() if p > partition})
    head = ((before + "," if before else "") + f"{partition}:").encode()
    return head, ("," + after if after else "").encode()


def sse_records(
    records: Sequence[Record], partition: int, fmt: ValueFormat, context: tuple[bytes, bytes]
) -> bytes:
    """One `record` event per record, each `id:` the position list right after it;
    `context` is `sse_context` of the stream's positions before these records."""
    head, tail = context
    out = []
    for record in records:
        token = b"%b%d%b" % (head, record.offset + 1, tail)
        data = record_json(record, partition, fmt)
        out.append(b"event: record\nid: %b\ndata: %b\n\n" % (token, data))
    return b"".join(out)

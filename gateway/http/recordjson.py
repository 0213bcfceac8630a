"""Stored records as JSON in the API's record shape: what a fetch reply, a group
fetch and a live stream show for each record.

One renderer for every reader of records (fetch replies, group fetches, WebSocket
frames, Server-Sent Events; a group fetch adds the record's `topic`), and the
reference for the C renderer of the records feature (`records/fastpath.py`): for
everything it renders, it must give these bytes exactly. Stored json values are
embedded verbatim (they are stored as JSON text); keys, strings and headers are
escaped by orjson. Pure: no I/O.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Protocol

import orjson

from storage.records import Record, ValueFormat

# A topic's value format as the C renderer names it.
FORMAT_CODES = {ValueFormat.JSON: 0, ValueFormat.STRING: 1, ValueFormat.BINARY: 2}
_NULL = b"null"
_FETCH_HEAD = b'{"records":['
_FETCH_TAIL = b'],"next_offset":0,"end_offset":0}'


class FetchRenderer(Protocol):
    """The records feature's C renderer (its `render_fetch`), when it is built and on:
    a partition fetch's reply for `records`, or None where it leaves them to this
    module. Handed to other readers by the wiring, so they share it without
    importing the records feature."""

    def render_fetch(
        self,
        records: Sequence[Record],
        partition: int,
        fmt: int,
        next_offset: int,
        end_offset: int,
        /,
    ) -> bytes | None: ...


_RECORD = b'{"partition":%d,"offset":%d,"timestamp":%d,"key":%b,"value":%b,"headers":%b}'
_TOPIC_RECORD = (
    b'{"topic":%b,"partition":%d,"offset":%d,"timestamp":%d,"key":%b,"value":%b,"headers":%b}'
)


def text(raw: bytes) -> str:
    """Stored key or header bytes as text (they were checked UTF-8 on the way in)."""
    return raw.decode("utf-8", errors="replace")


def value_json(stored: bytes | None, fmt: ValueFormat) -> bytes:
    """The JSON text a reader is shown for stored value bytes."""
    if stored is None:
        return _NULL
    if fmt is ValueFormat.JSON:
        return stored
    if fmt is ValueFormat.STRING:
        return orjson.dumps(stored.decode("utf-8", errors="replace"))
    return orjson.dumps(base64.b64encode(stored).decode("ascii"))


def _parts(record: Record, fmt: ValueFormat) -> tuple[bytes, bytes, bytes]:
    key = _NULL if record.key is None else orjson.dumps(text(record.key))
    headers = orjson.dumps([[name, text(value)] for name, value in record.headers])
    return key, value_json(record.value, fmt), headers


def record_json(record: Record, partition: int, fmt: ValueFormat) -> bytes:
    key, value, headers = _parts(record, fmt)
    return _RECORD % (partition, record.offset, record.timestamp, key, value, headers)


def records_json(records: Sequence[Record], partition: int, fmt: ValueFormat) -> bytes:
    """The JSON array of `records` in the API's record shape."""
    return b"[" + b",".join(record_json(r, partition, fmt) for r in records) + b"]"


def topic_records_json(
    topic: str,
    records: Sequence[Record],
    partition: int,
    fmt: ValueFormat,
    renderer: FetchRenderer | None = None,
) -> list[bytes]:
    """Each of `records` as a JSON object with its `topic` first (a group fetch's
    shape). With `renderer`, the records are rendered in C in one call, cut
    apart (`_cut`) and the topic put in front of each; the same bytes as the
    reference (tests/gateway/groups/test_recordjson.py)."""
    name = orjson.dumps(topic)
    if renderer is not None and records:
        body = renderer.render_fetch(records, partition, FORMAT_CODES[fmt], 0, 0)
        cut = None if body is None else _cut(body, len(records))
        if cut is not None:
            lead = b'{"topic":' + name + b"," + _RECORD_KEY
            return [lead + one for one in cut]
    out = []
    for r in records:
        key, value, headers = _parts(r, fmt)
        out.append(_TOPIC_RECORD % (name, partition, r.offset, r.timestamp, key, value, headers))
    return out


_RECORD_KEY = b'"partition":'
_BETWEEN_RECORDS = b",{" + _RECORD_KEY


def _cut(body: bytes, count: int) -> list[bytes] | None:
    """A fetch reply's `count` records, each without its opening `{"partition":`;
    None when that cannot be told for sure (the caller renders them one by one).

    Consecutive records meet at `,{"partition":`, so the reply holds at least
    `count - 1` of those; holding exactly that many, every one is a meeting
    point and cutting at them is exact (one that is not, inside a json topic's
    value embedded verbatim, makes it `count` or more). One C call for a batch
    costs a sixth of one a record (15 us against 92 us for 100 records)."""
    head = _FETCH_HEAD + b"{" + _RECORD_KEY
    if not (body.startswith(head) and body.endswith(_FETCH_TAIL)):
        return None
    parts = body[len(head) : -len(_FETCH_TAIL)].split(_BETWEEN_RECORDS)
    return parts if len(parts) == count else None

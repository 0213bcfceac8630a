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
    shape). With `renderer`, each record is rendered in C (one call a record, so
    that its bytes are known to be exactly that record's) and the topic put in
    front; the same bytes as the reference (tests/gateway/groups/test_recordjson.py)."""
    name = orjson.dumps(topic)
    code = FORMAT_CODES[fmt]
    lead = b'{"topic":' + name + b","
    out = []
    for r in records:
        body = None if renderer is None else renderer.render_fetch((r,), partition, code, 0, 0)
        if body is not None:
            out.append(lead + body[len(_FETCH_HEAD) + 1 : -len(_FETCH_TAIL)])
            continue
        key, value, headers = _parts(r, fmt)
        out.append(_TOPIC_RECORD % (name, partition, r.offset, r.timestamp, key, value, headers))
    return out

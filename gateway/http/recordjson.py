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


class FetchRenderer(Protocol):
    """The records feature's C renderer, when it is built and on: a group fetch's
    records of one partition with their topic (the topic's JSON text given), or
    None where it leaves them to this module. Handed to other readers by the
    wiring, so they share it without importing the records feature."""

    def render_topic_records(
        self, records: Sequence[Record], topic: bytes, partition: int, fmt: int, /
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
) -> bytes:
    """`records` as JSON objects with their `topic` first (a group fetch's shape),
    joined by commas. With `renderer`, in one C call; the same bytes as the
    reference (tests/gateway/groups/test_recordjson.py)."""
    name = orjson.dumps(topic)
    if renderer is not None:
        rendered = renderer.render_topic_records(records, name, partition, FORMAT_CODES[fmt])
        if rendered is not None:
            return rendered
    out = []
    for r in records:
        key, value, headers = _parts(r, fmt)
        out.append(_TOPIC_RECORD % (name, partition, r.offset, r.timestamp, key, value, headers))
    return b",".join(out)

"""Replies as JSON bytes: fetched records in the API's shape, and a produce's offsets.

The reference for the C renderers (`fastpath.py`): for everything they render,
they must give these bytes exactly. Stored json values are embedded verbatim
(they are stored as JSON text); keys, strings and headers are escaped by orjson.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import orjson

from gateway.records.values import value_json
from storage.records import Record, ValueFormat

_RECORD = b'{"partition":%d,"offset":%d,"timestamp":%d,"key":%b,"value":%b,"headers":%b}'
_OFFSET = b'{"partition":%d,"offset":%d}'


def text(raw: bytes) -> str:
    """Stored key or header bytes as text (they were checked UTF-8 on the way in)."""
    return raw.decode("utf-8", errors="replace")


def record_json(record: Record, partition: int, fmt: ValueFormat) -> bytes:
    key = b"null" if record.key is None else orjson.dumps(text(record.key))
    headers = orjson.dumps([[name, text(value)] for name, value in record.headers])
    value = value_json(record.value, fmt)
    return _RECORD % (partition, record.offset, record.timestamp, key, value, headers)


def records_json(records: Sequence[Record], partition: int, fmt: ValueFormat) -> bytes:
    """The JSON array of `records` in the API's record shape."""
    return b"[" + b",".join(record_json(r, partition, fmt) for r in records) + b"]"


def offsets_json(placed: Iterable[tuple[int, int]]) -> bytes:
    """The JSON array of `{"partition", "offset"}` for each (partition, offset)."""
    return b"[" + b",".join(_OFFSET % pair for pair in placed) + b"]"

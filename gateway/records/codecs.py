"""Records between their JSON shape and storage's bytes, per the topic's value format.

- `json`: any JSON value, stored as its compact JSON bytes, returned as JSON
  (embedded as an `orjson.Fragment`, so a fetch never re-parses values).
- `string`: a JSON string, stored as UTF-8, returned as a string.
- `binary`: base64 text in JSON, stored as the decoded bytes, returned as base64.

Keys and header values travel as JSON strings (UTF-8). A `null` value is
stored as an absent value (a tombstone) in every format. Validation collects
every problem of every record, with JSON pointers, instead of stopping at the
first, so a client can fix a whole batch at once.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain, compress, repeat
from operator import contains, getitem, is_, itemgetter, methodcaller
from typing import Any, NamedTuple

import orjson

from gateway.http.jsonlimits import too_deep
from gateway.records import _speedups
from storage.records import Header, NewRecord, Record, ValueFormat

FORMAT_CODES = {  # a topic's value format as the C fast paths name it
    ValueFormat.JSON: _speedups.FMT_JSON,
    ValueFormat.STRING: _speedups.FMT_STRING,
    ValueFormat.BINARY: _speedups.FMT_BINARY,
}
RECORD_FIELDS = frozenset({"key", "value", "headers", "partition", "timestamp"})
_INLINE_FIELDS = RECORD_FIELDS - {"headers"}
MAX_TIMESTAMP_MS = 2**63 - 1
_NO_LIMIT = 2**63 - 1  # a size or depth no input reaches
MAX_HEADERS = 1_000


class InvalidValue(ValueError):
    """A value that does not fit the topic's format; `where` is the pointer suffix."""

    def __init__(self, message: str, where: str = "/value") -> None:
        super().__init__(message)
        self.where = where


@dataclass(frozen=True, slots=True)
class RecordError:
    """One problem with one record: its index, a JSON pointer, a message."""

    record: int
    pointer: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"record": self.record, "pointer": self.pointer, "message": self.message}


class ParsedRecord(NamedTuple):
    """A validated record, the partition it asked for (None: let the partitioner pick)
    and its payload size (what `max_record_bytes` limits). A NamedTuple: produce
    builds one per record."""

    record: NewRecord
    partition: int | None
    size: int


def encode_value(value: Any, fmt: ValueFormat) -> bytes | None:
    """The stored bytes of a JSON-side `value`; raises InvalidValue if it does not fit `fmt`."""
    if value is None:
        return None
    if fmt is ValueFormat.JSON:
        try:
            return orjson.dumps(value)
        except (TypeError, orjson.JSONEncodeError) as exc:
            raise InvalidValue(f"value cannot be stored as JSON: {exc}") from exc
    if fmt is ValueFormat.STRING:
        if not isinstance(value, str):
            raise InvalidValue("the topic's value_format is 'string': value must be a string")
        return value.encode("utf-8")
    if not isinstance(value, str):
        raise InvalidValue("the topic's value_format is 'binary': value must be base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidValue(f"value is not valid base64: {exc}") from exc


def raw_value(body: bytes, fmt: ValueFormat) -> bytes:
    """A raw request body (octet-stream, text/plain) as one record's stored value.

    For `json` topics the body must be a JSON document (stored compact, since
    every stored json value must be returnable verbatim); for `string` topics
    it must be UTF-8; `binary` takes any bytes.
    """
    if fmt is ValueFormat.JSON:
        try:
            return orjson.dumps(orjson.loads(body))
        except orjson.JSONDecodeError as exc:
            raise InvalidValue(
                f"the topic's value_format is 'json' and the body is not JSON: {exc.msg} "
                f"(line {exc.lineno}, column {exc.colno})",
                "",
            ) from exc
    if fmt is ValueFormat.STRING:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidValue(
                f"the topic's value_format is 'string' and the body is not UTF-8: {exc.reason}",
                "",
            ) from exc
    return body


def decode_value(raw: bytes | None, fmt: ValueFormat) -> Any:
    """The JSON-side form of stored value bytes."""
    if raw is None:
        return None
    if fmt is ValueFormat.JSON:
        return orjson.Fragment(raw)
    if fmt is ValueFormat.STRING:
        return raw.decode("utf-8", errors="replace")
    return base64.b64encode(raw).decode("ascii")


def parse_headers(headers: Any) -> tuple[Header, ...]:
    """Headers as `[[name, value], ...]` or `{name: value}`; values are strings or null."""
    if headers is None:
        return ()
    if isinstance(headers, Mapping):
        pairs: Sequence[Any] = list(headers.items())
    elif isinstance(headers, list):
        pairs = headers
    else:
        raise InvalidValue("headers must be a list of [name, value] pairs or an object", "/headers")
    if len(pairs) > MAX_HEADERS:
        raise InvalidValue(f"at most {MAX_HEADERS} headers per record", "/headers")
    out: list[Header] = []
    for i, pair in enumerate(pairs):
        if not (isinstance(pair, list | tuple) and len(pair) == 2):
            raise InvalidValue("each header must be a [name, value] pair", f"/headers/{i}")
        name, value = pair
        if not isinstance(name, str) or not name:
            raise InvalidValue("a header name must be a non-empty string", f"/headers/{i}/0")
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise InvalidValue("a header value must be a string", f"/headers/{i}/1")
        out.append((name, value.encode("utf-8")))
    return tuple(out)


def parse_record(
    obj: Any, index: int, fmt: ValueFormat, partitions: int, *, base: str = "/records"
) -> ParsedRecord | list[RecordError]:
    """Validate one record object; returns the record or every error found in it.

    Produce calls this for every record of every batch, so a record that is
    plainly valid takes a short path; anything else goes through the full
    check, which lists every problem it finds.
    """
    if type(obj) is dict and obj.keys() <= RECORD_FIELDS:
        fast = _parse_plain_record(obj, fmt, partitions)
        if fast is not None:
            return fast
    return _parse_record_fully(obj, index, fmt, partitions, base)


class TooDeep(ValueError):
    """A record nests past the JSON depth limit: the whole body is refused (413)."""


@dataclass(slots=True)
class ParsedBatch:
    """A whole batch checked: the valid records in request order, each one's explicit
    partition (None: the partitioner picks), every problem of the invalid ones, and
    the valid ones over the size limit (reported with their request indexes)."""

    records: list[NewRecord]
    partitions: list[int | None]
    errors: list[RecordError]
    oversize: list[RecordError]


def parse_records(
    objects: Sequence[Any],
    fmt: ValueFormat,
    partitions: int,
    *,
    max_bytes: int | None = None,
    max_depth: int | None = None,
) -> ParsedBatch:
    """`parse_record` over a whole batch, with the size and nesting limits.

    `max_bytes` bounds each record's payload; `max_depth`, when given, bounds each
    record object's nesting (the object itself is level 1) and raises TooDeep past
    it, so the caller need not walk the whole document first.

    A batch of one simple shape throughout is checked whole first (`_simple_batch`).
    Otherwise the commonest record — a JSON value with an optional key, partition
    and timestamp, no headers — is checked inline here, because produce spends
    most of its time in this loop; every other record takes `parse_record`. All give the
    same result for the same object (a property test holds them to it). A value's
    nesting is bounded by counting brackets in its serialized bytes (in C); only a
    value with more brackets than the budget is walked.
    """
    limit = _NO_LIMIT if max_bytes is None else max_bytes
    value_depth = _NO_LIMIT if max_depth is None else max_depth - 1  # values sit in a record
    if fmt is ValueFormat.JSON and objects:
        simple = _simple_batch(objects, limit, value_depth)
        if simple is not None:
            return ParsedBatch(simple, [None] * len(simple), [], [])
    records: list[NewRecord] = []
    chosen: list[int | None] = []
    errors: list[RecordError] = []
    oversize: list[RecordError] = []
    # Inline records are objects (level 1), so a budget below 1 leaves them to the full path.
    inline = fmt is ValueFormat.JSON and (max_depth is None or max_depth >= 1)
    dumps = orjson.dumps
    new = tuple.__new__
    add, choose = records.append, chosen.append
    for i, obj in enumerate(objects):
        kind = type(obj)
        if inline and kind is dict and obj.keys() <= _INLINE_FIELDS:
            key = obj.get("key")
            partition = obj.get("partition")
            timestamp = obj.get("timestamp")
            value = obj.get("value")
            if (
                (key is None or type(key) is str)
                and (partition is None or (type(partition) is int and 0 <= partition < partitions))
                and (
                    timestamp is None
                    or (type(timestamp) is int and 0 <= timestamp <= MAX_TIMESTAMP_MS)
                )
            ):
                try:
                    raw = None if value is None else dumps(value)
                except (TypeError, orjson.JSONEncodeError):
                    raw = None  # parse_record reports it, unless it is too deep
                else:
                    if (
                        raw is not None
                        and raw.count(b"[") + raw.count(b"{") > value_depth
                        and too_deep(value, value_depth)
                    ):
                        raise TooDeep(f"record {i} nests past {max_depth} levels")
                    key_bytes = None if key is None else key.encode("utf-8")
                    size = (len(raw) if raw else 0) + (len(key_bytes) if key_bytes else 0)
                    if size > limit:
                        oversize.append(_oversize(i, size, limit))
                    add(new(NewRecord, (raw, key_bytes, (), timestamp)))
                    choose(partition)
                    continue
        if max_depth is not None and (kind is dict or kind is list) and too_deep(obj, max_depth):
            raise TooDeep(f"record {i} nests past {max_depth} levels")
        result = parse_record(obj, i, fmt, partitions)
        if isinstance(result, list):
            errors.extend(result)
            continue
        if result.size > limit:
            oversize.append(_oversize(i, result.size, limit))
        add(result.record)
        choose(result.partition)
    return ParsedBatch(records, chosen, errors, oversize)


def _simple_batch(
    objects: Sequence[Any], max_bytes: int, value_depth: int
) -> list[NewRecord] | None:
    """The records of a batch whose every record is `{"value": v}`, or every record
    `{"key": "k", "value": v}`, with no null value, each within the limits; None for
    any other batch (the record loop then decides, with its exact errors).

    The commonest batches, checked with `map` over the whole batch so that the
    per-record work runs in C: no Python bytecode per record. Nesting and size are
    bounded conservatively (the most brackets and the longest value in the batch);
    a batch near a limit takes the record loop.
    """
    n = len(objects)
    if set(map(type, objects)) != {dict}:
        return None
    shapes = set(map(len, objects))
    if shapes == {1}:
        keyed = False
    elif shapes == {2}:
        keyed = True
    else:
        return None
    if not all(map(contains, objects, repeat("value", n))):
        return None
    if keyed and not all(map(contains, objects, repeat("key", n))):
        return None
    values = list(map(getitem, objects, repeat("value", n)))
    if None in values:
        return None
    try:
        raws = list(map(orjson.dumps, values))
    except (TypeError, orjson.JSONEncodeError):
        return None
    if not _shallow(values, value_depth):
        return None
    longest = max(map(len, raws))
    if not keyed:
        if longest > max_bytes:
            return None
        return list(
            map(
                tuple.__new__,
                repeat(NewRecord, n),
                zip(raws, repeat(None), repeat(()), repeat(None)),
            )
        )
    keys = list(map(getitem, objects, repeat("key", n)))
    if set(map(type, keys)) != {str}:
        return None
    encoded = list(map(str.encode, keys))
    if longest + max(map(len, encoded)) > max_bytes:
        return None
    return list(
        map(tuple.__new__, repeat(NewRecord, n), zip(raws, encoded, repeat(()), repeat(None)))
    )


_SCALARS = frozenset({str, int, float, bool, type(None)})
_JSON_TYPES = _SCALARS | {dict, list}


def _shallow(values: list[Any], max_depth: int) -> bool:
    """True when no value nests past `max_depth` containers, decided a level at a
    time across the whole batch with `map` and `compress` (in C); False when one
    does, or holds something that is not a JSON type."""
    level: list[Any] = values
    for _ in range(max_depth + 1):
        kinds = set(map(type, level))
        if kinds <= _SCALARS:
            return True
        if not kinds <= _JSON_TYPES:
            return False
        if kinds == {dict}:
            level = list(chain.from_iterable(map(dict.values, level)))
        elif kinds == {list}:
            level = list(chain.from_iterable(level))
        else:
            below: list[Any] = []
            if dict in kinds:
                dicts = compress(level, map(is_, map(type, level), repeat(dict)))
                below.extend(chain.from_iterable(map(dict.values, dicts)))
            if list in kinds:
                below.extend(
                    chain.from_iterable(compress(level, map(is_, map(type, level), repeat(list))))
                )
            level = below
    return False  # containers remain below the last level allowed


def _oversize(index: int, size: int, limit: int) -> RecordError:
    return RecordError(
        index, f"/records/{index}", f"record is {size} bytes; the topic allows {limit}"
    )


def _parse_plain_record(
    obj: dict[str, Any], fmt: ValueFormat, partitions: int
) -> ParsedRecord | None:
    """The record when every field is present-and-valid or absent; else None."""
    key = obj.get("key")
    partition = obj.get("partition")
    timestamp = obj.get("timestamp")
    if key is not None and type(key) is not str:
        return None
    if partition is not None and (type(partition) is not int or not 0 <= partition < partitions):
        return None
    if timestamp is not None and (
        type(timestamp) is not int or not 0 <= timestamp <= MAX_TIMESTAMP_MS
    ):
        return None
    try:
        value = encode_value(obj.get("value"), fmt)
        headers = parse_headers(obj.get("headers"))
    except InvalidValue:
        return None
    key_bytes = None if key is None else key.encode("utf-8")
    record = NewRecord(value, key_bytes, headers, timestamp)
    if headers:
        return ParsedRecord(record, partition, record.size())
    size = (len(value) if value else 0) + (len(key_bytes) if key_bytes else 0)
    return ParsedRecord(record, partition, size)


def _parse_record_fully(
    obj: Any, index: int, fmt: ValueFormat, partitions: int, base: str
) -> ParsedRecord | list[RecordError]:
    here = f"{base}/{index}"
    if not isinstance(obj, dict):
        return [RecordError(index, here, "a record must be a JSON object")]
    errors: list[RecordError] = []
    unknown = obj.keys() - RECORD_FIELDS
    for name in sorted(unknown):
        errors.append(RecordError(index, f"{here}/{_escape(name)}", f"unknown field {name!r}"))

    key = obj.get("key")
    key_bytes: bytes | None = None
    if key is not None:
        if isinstance(key, str):
            key_bytes = key.encode("utf-8")
        else:
            errors.append(RecordError(index, f"{here}/key", "key must be a string or null"))

    value: bytes | None = None
    try:
        value = encode_value(obj.get("value"), fmt)
    except InvalidValue as exc:
        errors.append(RecordError(index, here + exc.where, str(exc)))

    headers: tuple[Header, ...] = ()
    try:
        headers = parse_headers(obj.get("headers"))
    except InvalidValue as exc:
        errors.append(RecordError(index, here + exc.where, str(exc)))

    partition = obj.get("partition")
    if partition is not None and (not _is_int(partition) or not 0 <= partition < partitions):
        errors.append(
            RecordError(
                index,
                f"{here}/partition",
                f"partition must be an integer in 0..{partitions - 1}",
            )
        )

    timestamp = obj.get("timestamp")
    if timestamp is not None and (not _is_int(timestamp) or not 0 <= timestamp <= MAX_TIMESTAMP_MS):
        errors.append(
            RecordError(
                index, f"{here}/timestamp", "timestamp must be milliseconds since the epoch"
            )
        )
    if errors:
        return errors
    record = NewRecord(value, key_bytes, headers, timestamp)
    return ParsedRecord(record, partition, record.size())


def record_to_json(record: Record, partition: int, fmt: ValueFormat) -> dict[str, Any]:
    """The API's record shape; values of json topics are embedded without re-parsing."""
    return {
        "partition": partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
        "key": None if record.key is None else record.key.decode("utf-8", errors="replace"),
        "value": decode_value(record.value, fmt),
        "headers": [[n, v.decode("utf-8", errors="replace")] for n, v in record.headers],
    }


_RECORD_TEMPLATE = b'{"partition":%d,"offset":%d,"timestamp":%d,"key":%b,"value":%b,"headers":%b}'


def records_json(records: Sequence[Record], partition: int, fmt: ValueFormat) -> bytes:
    """The JSON array of `records` in the API's shape, as bytes, built in one pass.

    The same document `orjson.dumps([record_to_json(...), ...])` gives, without a dict
    per record. A fetch renders its reply in C (`_speedups.render_fetch`); this is
    that renderer's reference, and the path for what it declines (keys or texts
    that are not valid UTF-8, offsets past int64). Stored json values are compact
    JSON already and go in verbatim; keys, strings and headers are escaped by orjson.
    """
    if fmt is ValueFormat.JSON:
        plain = _plain_records_json(records, partition)
        if plain is not None:
            return plain
    dumps = orjson.dumps
    parts: list[bytes] = []
    for r in records:
        key = b"null" if r.key is None else dumps(r.key.decode("utf-8", errors="replace"))
        raw = r.value
        if raw is None:
            value = b"null"
        elif fmt is ValueFormat.JSON:
            value = raw
        else:
            value = dumps(decode_value(raw, fmt))
        headers = (
            dumps([[n, v.decode("utf-8", errors="replace")] for n, v in r.headers])
            if r.headers
            else b"[]"
        )
        parts.append(_RECORD_TEMPLATE % (partition, r.offset, r.timestamp, key, value, headers))
    return b"[" + b",".join(parts) + b"]"


_OFFSET_OF, _TIMESTAMP_OF, _KEY_OF, _VALUE_OF, _HEADERS_OF = (itemgetter(i) for i in range(5))
_TEXT = methodcaller("decode", "utf-8", "replace")


def _plain_records_json(records: Sequence[Record], partition: int) -> bytes | None:
    """`records_json` of a json topic's records with values and no headers, and keys
    all null or all present, formatted with `map` (in C); None for any other mix."""
    n = len(records)
    values = list(map(_VALUE_OF, records))
    if None in values or any(map(_HEADERS_OF, records)):
        return None
    keys = list(map(_KEY_OF, records))
    nulls = keys.count(None)
    # The partition (and a null key) go into the template: fewer fields to format.
    head = b'{"partition":%d,"offset":%%d,"timestamp":%%d,"key":' % partition
    offsets, stamps = map(_OFFSET_OF, records), map(_TIMESTAMP_OF, records)
    if nulls == n:
        template = head + b'null,"value":%b,"headers":[]}'
        rows: Iterable[tuple[Any, ...]] = zip(offsets, stamps, values, strict=True)
    elif nulls == 0:
        template = head + b'%b,"value":%b,"headers":[]}'
        rows = zip(offsets, stamps, map(orjson.dumps, map(_TEXT, keys)), values, strict=True)
    else:
        return None
    return b"[" + b",".join(map(template.__mod__, rows)) + b"]"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _escape(name: str) -> str:
    """RFC 6901 escaping of one pointer segment."""
    return name.replace("~", "~0").replace("/", "~1")

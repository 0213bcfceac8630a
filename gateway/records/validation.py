"""The specification of a produce body: what is accepted, what each record becomes, every error.

This is the reference path, written to be read: a body is split into record
texts (`read_records`), each record is checked field by field
(`check_record`), and a batch is checked whole (`check_batch`), collecting
every problem of every record with a JSON pointer instead of stopping at the
first, so a client can fix a whole batch at once. The C fast path
(`fastpath.py`) must give byte for byte the same records for every body it
takes; differential property tests hold it to this module.

JSON is read with msgspec, which hands each value over as the exact text that
was sent (`msgspec.Raw`), so values are stored as sent (see `values`).
Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import msgspec

from gateway.http.jsonlimits import JsonLimitExceeded, JsonLimits, check_json_limits
from gateway.records.values import InvalidValue, stored_value
from storage.records import Header, NewRecord, ValueFormat

RECORD_FIELDS = frozenset({"key", "value", "headers", "partition", "timestamp"})
SCHEMA_VERSION_FIELD = "schema_version"  # a record's pin to a version of its topic's subject
MAX_TIMESTAMP_MS = 2**63 - 1
MAX_HEADERS = 1_000
_UNLIMITED = 2**62

_OBJECT = msgspec.json.Decoder(dict[str, msgspec.Raw])
_ARRAY = msgspec.json.Decoder(list[msgspec.Raw])
_ANY = msgspec.json.Decoder(msgspec.Raw)
_TEXT = msgspec.json.Decoder(str)
_INT_OR_NULL = msgspec.json.Decoder(int | None)
_BYTE = re.compile(r"\(byte (\d+)\)")
WRONG: Any = object()  # what `_shaped` answers for JSON of another shape


@dataclass(frozen=True, slots=True)
class RecordError:
    """One problem with one record: its index, a JSON pointer, a message."""

    record: int
    pointer: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"record": self.record, "pointer": self.pointer, "message": self.message}


class ParsedRecord(NamedTuple):
    """A valid record, the partition it asked for (None: the partitioner picks), its
    payload size (what `max_record_bytes` limits) and the schema version it pins."""

    record: NewRecord
    partition: int | None
    size: int
    schema_version: int | None = None


@dataclass(slots=True)
class ParsedBatch:
    """A whole batch checked: the valid records in request order, each one's explicit
    partition, every problem of the invalid ones, and the valid ones over the size
    limit (reported with their request indexes)."""

    records: list[NewRecord]
    partitions: list[int | None]
    errors: list[RecordError]
    oversize: list[RecordError]
    # Each record's `schema_version` (None: the request's), on a schema-bound topic.
    versions: list[int | None] = field(default_factory=list)


class BodyError(ValueError):
    """The body as a whole is unusable. `kind` says how: `malformed` (not JSON, with
    the byte where it breaks), `shape` (not `{"records": [...]}`, with pointers),
    `too-deep` (nests past the depth limit)."""

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        position: int | None = None,
        pointers: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.position = position  # of the byte where the body breaks
        self.pointers = list(pointers)


@dataclass(frozen=True, slots=True)
class RecordTexts:
    """The record texts of a body and how deep each may nest (they sit inside
    `{"records": [...]}` in a JSON body, at the top of an NDJSON line)."""

    texts: list[bytes]
    max_depth: int


def read_records(body: bytes, *, ndjson: bool, limits: JsonLimits) -> RecordTexts:
    """The texts of a JSON body's `records` array, or of an NDJSON body's lines.

    The whole body must be UTF-8. Raises BodyError; the caller has already bounded
    the body's item count and string lengths (`jsonlimits`).
    """
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError("malformed", f"invalid UTF-8 ({exc.reason})", position=exc.start) from None
    if ndjson:
        texts, start = [], 0
        for line in body.split(b"\n"):
            if line.strip():
                _decode(_ANY, line, base=start)
                texts.append(line)
            start += len(line) + 1
        return RecordTexts(texts, limits.max_depth)
    doc = _decode(_OBJECT, body)
    if doc is None:
        raise BodyError("shape", 'the body must be {"records": [...]}', pointers=["/records"])
    extra = sorted(doc.keys() - {"records"})
    if extra:
        raise BodyError("shape", f"unknown field {extra[0]!r}", pointers=[f"/{k}" for k in extra])
    records = doc.get("records")
    if records is None:
        raise BodyError("shape", 'the body must be {"records": [...]}', pointers=["/records"])
    array = _decode(_ARRAY, bytes(records))
    if array is None:
        raise BodyError("shape", 'the body must be {"records": [...]}', pointers=["/records"])
    return RecordTexts([bytes(r) for r in array], limits.max_depth - 2)


def _decode(decoder: msgspec.json.Decoder[Any], text: bytes, *, base: int = 0) -> Any:
    """`decoder.decode(text)`; None when the text is JSON of another shape. `base`:
    where `text` starts in the body, for the position of a syntax error."""
    try:
        return decoder.decode(text)
    except msgspec.ValidationError:
        return None
    except msgspec.DecodeError as exc:
        found = _BYTE.search(str(exc))
        at = int(found.group(1)) if found else len(text)
        raise BodyError(
            "malformed",
            str(exc).split(" (byte", 1)[0].removeprefix("JSON is malformed: "),
            position=base + at,
        ) from None
    except RecursionError:
        raise BodyError("too-deep", "the body nests too deeply to read") from None


def too_deep(text: bytes, max_depth: int) -> bool:
    """Whether a JSON text nests more than `max_depth` containers. A text of n bytes
    cannot nest past n/2 levels, and none past its count of brackets, so only a
    long, bracket-rich text is scanned."""
    if len(text) < 2 * (max_depth + 1):
        return False
    if text.count(b"[") + text.count(b"{") <= max_depth:
        return False
    try:
        check_json_limits(text, JsonLimits(max_depth, _UNLIMITED, _UNLIMITED))
    except JsonLimitExceeded:
        return True
    return False


def check_headers(text: bytes) -> tuple[Header, ...]:
    """Headers as `[[name, value], ...]` or `{name: value}`; names are non-empty
    strings, values strings or null (stored empty). Raises InvalidValue."""
    if text == b"null":
        return ()
    named: list[tuple[Any, bytes, str]]  # name, value text, the value's pointer
    as_object = _shaped(_OBJECT, text)
    if as_object is not WRONG:
        named = [(n, bytes(v), f"/headers/{_escape(n)}") for n, v in as_object.items()]
    else:
        items = _shaped(_ARRAY, text)
        if items is WRONG:
            message = "headers must be a list of [name, value] pairs or an object"
            raise InvalidValue(message, "/headers")
        named = []
        for i, item in enumerate(items):
            pair = _shaped(_ARRAY, bytes(item))
            if pair is WRONG or len(pair) != 2:
                raise InvalidValue("each header must be a [name, value] pair", f"/headers/{i}")
            name = _string(bytes(pair[0]), "a header name", f"/headers/{i}/0")
            named.append((name, bytes(pair[1]), f"/headers/{i}/1"))
    if len(named) > MAX_HEADERS:
        raise InvalidValue(f"at most {MAX_HEADERS} headers per record", "/headers")
    out: list[Header] = []
    for name, value_text, where in named:
        if not isinstance(name, str) or not name:
            raise InvalidValue("a header name must be a non-empty string", "/headers")
        value = "" if value_text == b"null" else _string(value_text, "a header value", where)
        out.append((name, value.encode("utf-8")))
    return tuple(out)


def check_record(
    text: bytes, index: int, fmt: ValueFormat, partitions: int, *, schema_bound: bool = False
) -> ParsedRecord | list[RecordError]:
    """One record text checked; the record, or every error found in it. A record of a
    schema-bound topic may pin a version of the subject (`schema_version`)."""
    here = f"/records/{index}"
    fields = _shaped(_OBJECT, text)
    if fields is WRONG:
        return [RecordError(index, here, "a record must be a JSON object")]
    allowed = RECORD_FIELDS | {SCHEMA_VERSION_FIELD} if schema_bound else RECORD_FIELDS
    errors = [
        RecordError(index, f"{here}/{_escape(name)}", f"unknown field {name!r}")
        for name in sorted(fields.keys() - allowed)
    ]
    schema_version = None
    if schema_bound:
        schema_version = _shaped(_INT_OR_NULL, bytes(fields.get(SCHEMA_VERSION_FIELD, b"null")))
    if schema_version is not None and (schema_version is WRONG or schema_version < 1):
        message = "schema_version must be a version number (from 1) of the topic's subject"
        errors.append(RecordError(index, f"{here}/{SCHEMA_VERSION_FIELD}", message))

    key_bytes: bytes | None = None
    key_text = bytes(fields.get("key", b"null"))
    if key_text != b"null":
        try:
            key_bytes = _string(key_text, "key", "/key").encode("utf-8")
        except InvalidValue as exc:
            errors.append(RecordError(index, here + exc.where, str(exc)))

    value: bytes | None = None
    try:
        value = stored_value(bytes(fields.get("value", b"null")), fmt)
    except InvalidValue as exc:
        errors.append(RecordError(index, here + exc.where, str(exc)))

    headers: tuple[Header, ...] = ()
    try:
        headers = check_headers(bytes(fields.get("headers", b"null")))
    except InvalidValue as exc:
        errors.append(RecordError(index, here + exc.where, str(exc)))

    partition = _shaped(_INT_OR_NULL, bytes(fields.get("partition", b"null")))
    if partition is not None and not (partition is not WRONG and 0 <= partition < partitions):
        message = f"partition must be an integer in 0..{partitions - 1}"
        errors.append(RecordError(index, f"{here}/partition", message))

    timestamp = _shaped(_INT_OR_NULL, bytes(fields.get("timestamp", b"null")))
    if timestamp is not None and not (
        timestamp is not WRONG and 0 <= timestamp <= MAX_TIMESTAMP_MS
    ):
        message = "timestamp must be milliseconds since the epoch"
        errors.append(RecordError(index, f"{here}/timestamp", message))
    if errors:
        return errors
    record = NewRecord(value, key_bytes, headers, timestamp)
    return ParsedRecord(record, partition, record.size(), schema_version)


def check_batch(
    texts: RecordTexts,
    fmt: ValueFormat,
    partitions: int,
    *,
    max_record_bytes: int,
    schema_bound: bool = False,
) -> ParsedBatch:
    """Every record checked, and each one's size against `max_record_bytes`. Raises
    BodyError (`too-deep`) when a record nests past the depth limit: that refuses
    the whole body, as every JSON limit does."""
    batch = ParsedBatch([], [], [], [])
    for index, text in enumerate(texts.texts):
        if too_deep(text, texts.max_depth):
            raise BodyError("too-deep", f"record {index} nests too deeply")
        result = check_record(text, index, fmt, partitions, schema_bound=schema_bound)
        if isinstance(result, list):
            batch.errors.extend(result)
            continue
        if result.size > max_record_bytes:
            message = f"record is {result.size} bytes; the topic allows {max_record_bytes}"
            batch.oversize.append(RecordError(index, f"/records/{index}", message))
        batch.records.append(result.record)
        batch.partitions.append(result.partition)
        batch.versions.append(result.schema_version)
    return batch


def _shaped(decoder: msgspec.json.Decoder[Any], text: bytes) -> Any:
    """`decoder.decode(text)` for a text already known to be JSON; WRONG when it is
    JSON of another shape."""
    try:
        return decoder.decode(text)
    except msgspec.DecodeError:
        return WRONG


def _string(text: bytes, what: str, where: str) -> str:
    """A JSON string's text as a str; InvalidValue saying what is wrong otherwise."""
    value = _shaped(_TEXT, text)
    if value is WRONG:
        raise InvalidValue(f"{what} must be a string", where)
    return str(value)


def _escape(name: str) -> str:
    """RFC 6901 escaping of one pointer segment."""
    return name.replace("~", "~0").replace("/", "~1")

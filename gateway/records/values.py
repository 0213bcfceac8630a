"""Record values between their JSON text and storage's bytes, per the topic's value format.

- `json`: any JSON value, stored as the text the producer sent with the
  insignificant whitespace taken out: numbers, escapes and member order stay
  exactly as sent (`18446744073709551616` and `1.10` are not rounded or
  reformatted), and a fetch returns that text verbatim.
- `string`: a JSON string, stored as its UTF-8 bytes, returned as a string.
- `binary`: base64 text in JSON, stored as the decoded bytes, returned as base64.

A `null` value is stored as an absent value (a tombstone) in every format.
Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii

import msgspec

from gateway.http.recordjson import FORMAT_CODES, value_json
from storage.records import ValueFormat

__all__ = [
    "FORMAT_CODES",
    "InvalidValue",
    "compact_json",
    "raw_body_value",
    "stored_value",
    "value_json",
]

_NULL = b"null"
_TEXT = msgspec.json.Decoder(str)


class InvalidValue(ValueError):
    """A value that does not fit the topic's format; `where` is the pointer suffix."""

    def __init__(self, message: str, where: str = "/value") -> None:
        super().__init__(message)
        self.where = where


def compact_json(text: bytes) -> bytes:
    """`text`, one JSON document in UTF-8, without insignificant whitespace; every
    token exactly as written. Raises InvalidValue when it is not JSON."""
    try:
        return msgspec.json.format(text, indent=-1)
    except msgspec.DecodeError as exc:
        raise InvalidValue(f"value is not valid JSON: {_reason(exc)}") from None


def stored_value(text: bytes, fmt: ValueFormat) -> bytes | None:
    """The stored bytes of a value given as JSON text (`null`: a tombstone)."""
    if text == _NULL:
        return None
    if fmt is ValueFormat.JSON:
        return compact_json(text)
    try:
        value = _TEXT.decode(text)
    except msgspec.DecodeError:
        kind = "a string" if fmt is ValueFormat.STRING else "base64 text"
        raise InvalidValue(
            f"the topic's value_format is {fmt.value!r}: value must be {kind}"
        ) from None
    if fmt is ValueFormat.STRING:
        return value.encode("utf-8")  # msgspec refuses unpaired surrogate escapes
    if len(value) % 4 or "=" in value.removesuffix("=").removesuffix("="):
        # b64decode(validate=True) lets padding past the last group of four pass
        # ("AAAA=", "AAAA===="); canonical base64 has at most two, at the end.
        raise InvalidValue("value is not valid base64: padding only ends the last group of four")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidValue(f"value is not valid base64: {exc}") from None


def raw_body_value(body: bytes, fmt: ValueFormat) -> bytes:
    """A raw request body (octet-stream, text/plain) as one record's stored value:
    a JSON document for `json` topics (compacted as above), UTF-8 for `string`
    topics, any bytes for `binary` ones."""
    if fmt is ValueFormat.BINARY:
        return body
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidValue(
            f"the topic's value_format is {fmt.value!r} and the body is not UTF-8: "
            f"{exc.reason} at byte {exc.start}",
            "",
        ) from None
    if fmt is ValueFormat.STRING:
        return body
    try:
        return msgspec.json.format(body, indent=-1)
    except msgspec.DecodeError as exc:
        raise InvalidValue(
            f"the topic's value_format is 'json' and the body is not JSON: {_reason(exc)}", ""
        ) from None


def _reason(exc: msgspec.DecodeError) -> str:
    text = str(exc)
    if text == "Input data was truncated":  # also what msgspec says of a lone "\ud800"
        return "it ends too soon or holds an unpaired surrogate escape"
    return text

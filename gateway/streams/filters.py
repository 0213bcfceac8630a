"""A stream's optional server-side filter: only records with a given key, or carrying a
given header value, so a browser can follow one customer's events without
receiving all of them.

`key=<text>` keeps records whose key is exactly that text; `header=<name>:<value>`
keeps records with a header of that name and exactly that value (any of its
headers, when the name repeats). Both together keep records that match both.
The positions and resume tokens of a filtered stream still count every record
read, so a resumed stream never reads a skipped record twice nor misses one
that matches. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gateway.http.problems import GatewayError, ProblemType
from storage.records import Record

MAX_FILTER_BYTES = 1024


@dataclass(frozen=True, slots=True)
class RecordFilter:
    key: bytes | None = None
    header: tuple[str, bytes] | None = None

    def matches(self, record: Record) -> bool:
        if self.key is not None and record.key != self.key:
            return False
        return self.header is None or self.header in record.headers

    def apply(self, records: Sequence[Record]) -> Sequence[Record]:
        """The records that match, in order (`records` itself when all do)."""
        kept = [r for r in records if self.matches(r)]
        return records if len(kept) == len(records) else kept


def filter_of(params: Mapping[str, str]) -> RecordFilter | None:
    """The filter a stream's query asks for (`key`, `header`), or None; 400 when malformed."""
    key_text, header_text = params.get("key"), params.get("header")
    if key_text is None and header_text is None:
        return None
    key = None if key_text is None else key_text.encode()
    header = None
    if header_text is not None:
        name, sep, value = header_text.partition(":")
        if not sep or not name:
            raise GatewayError(
                ProblemType.INVALID_PARAMETER,
                "header must be name:value",
                parameter="header",
            )
        header = (name, value.encode())
    for name, raw in (("key", key), ("header", header_text.encode() if header_text else None)):
        if raw is not None and len(raw) > MAX_FILTER_BYTES:
            raise GatewayError(
                ProblemType.INVALID_PARAMETER,
                f"{name} is longer than {MAX_FILTER_BYTES} bytes",
                parameter=name,
            )
    return RecordFilter(key, header)

"""The C fast paths (`_speedups.c`), when built and enabled: one place decides.

The package works without a compiler: `setup.py` marks the extension
optional, and without it (or with `TIDEGATE_FAST_PATHS=false`) every request
takes the reference paths (`validation`, `rendering`, `gateway.http.recordjson`),
which say what the answer is. When the C paths answer, their answer is byte for byte the
reference's (tests/gateway/records/test_speedups.py); each returns None for
anything it is not certain about, and the caller then takes the reference path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from storage.records import AppendResult, PackedRecords, Record


class FastPaths(Protocol):
    """What `_speedups` offers (see its `.pyi` and the C file's header comment)."""

    SCHEMA_ID_HEADER: str  # the header name a checked scan declines (value_schemas')

    def scan_produce(
        self,
        body: bytes,
        fmt: int,
        partitions: int,
        max_records: int,
        max_record_bytes: int,
        max_depth: int,
        max_items: int,
        max_string_bytes: int,
        now_ms: int,
        round_robin: int,
        packed_type: type[PackedRecords],
        /,
        *,
        schema: object | None = None,
    ) -> tuple[list[tuple[int, PackedRecords]], list[int] | None, int] | None: ...

    def compile_schema(self, root: object, /) -> object: ...

    def offsets_json(self, partition: int, base: int, count: int, /) -> bytes: ...

    def placed_offsets_json(self, order: list[int], results: list[AppendResult], /) -> bytes: ...

    def add_header(self, data: bytes, count: int, header: bytes, /) -> bytes | None: ...

    def render_fetch(
        self,
        records: Sequence[Record],
        partition: int,
        fmt: int,
        next_offset: int,
        end_offset: int,
        /,
    ) -> bytes | None: ...

    def render_topic_records(
        self, records: Sequence[Record], topic: bytes, partition: int, fmt: int, /
    ) -> bytes | None: ...


def built() -> FastPaths | None:
    """The C module, or None when the package was installed without it."""
    try:
        from gateway.records import _speedups
    except ImportError:
        return None
    return _speedups


def load(enabled: bool) -> FastPaths | None:
    """The fast paths to use: None when disabled by settings or not built."""
    return built() if enabled else None

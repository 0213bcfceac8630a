"""Types of the C fast paths in `_speedups.c` (see its header comment for the rules)."""

from collections.abc import Sequence

from storage.records import AppendResult, PackedRecords, Record

FMT_JSON: int
FMT_STRING: int
FMT_BINARY: int
SCHEMA_ID_HEADER: str

def scan_produce(
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
    *,
    schema: object | None = None,
) -> tuple[list[tuple[int, PackedRecords]], list[int] | None, int] | None: ...
def compile_schema(root: object) -> object: ...
def offsets_json(partition: int, base: int, count: int) -> bytes: ...
def placed_offsets_json(order: list[int], results: list[AppendResult]) -> bytes: ...
def add_header(data: bytes, count: int, header: bytes) -> bytes | None: ...
def render_fetch(
    records: Sequence[Record], partition: int, fmt: int, next_offset: int, end_offset: int
) -> bytes | None: ...
def render_topic_records(
    records: Sequence[Record], topic: bytes, partition: int, fmt: int
) -> bytes | None: ...

from collections.abc import Sequence
from typing import Any, TypeVar

from storage.embedded.passes import Entry, Framed
from storage.records import AppendResult, PackedRecords

P = TypeVar("P")
S = TypeVar("S")

def frame(
    data: bytes,
    count: int,
    first_timestamp: int,
    max_timestamp: int,
    identity: bytes | None,
    appended_ms: int,
    /,
) -> bytes: ...
def spread(
    batches: Sequence[tuple[int, PackedRecords]],
    partitions: list[P],
    shards: list[S],
    limit: int,
    /,
) -> list[tuple[S, list[P], list[PackedRecords], list[int]]] | None: ...
def write_files(fds: list[int], datas: list[bytes], /) -> list[int]: ...
def frame_pass(
    groups: Sequence[Sequence[Entry]], bases: Sequence[int], merged: int, /
) -> list[Framed]: ...
def answer_pass(
    result_type: type[AppendResult],
    numbers: Sequence[int],
    groups: Sequence[Sequence[Entry]],
    starts: Sequence[Sequence[int]],
    /,
) -> None: ...
def group_pass(
    groups: dict[Any, list[Entry]],
    keys: list[Any],
    packs: list[PackedRecords],
    results: list[Any],
    slots: list[int],
    item: Any,
    /,
) -> None: ...

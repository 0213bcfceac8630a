from collections.abc import Sequence
from typing import TypeVar

from storage.records import PackedRecords

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

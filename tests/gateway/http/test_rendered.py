"""The rendered-records cache: the same record objects render once, anything else anew."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from gateway.http.rendered import RenderedRecords
from storage.records import Record


class Renderer:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, records: Sequence[Record]) -> bytes:
        self.calls += 1
        return b"[" + b",".join(r.value or b"null" for r in records) + b"]"


def run(n: int, start: int = 0) -> list[Record]:
    return [Record(start + i, 0, None, b"%d" % (start + i)) for i in range(n)]


def test_the_same_records_render_once() -> None:
    cache, render = RenderedRecords(1 << 20), Renderer()
    records = run(3)
    assert cache.head(records, 0, 1, render) == b"[0,1,2]"
    assert cache.head(tuple(records), 0, 1, render) == b"[0,1,2]"  # same objects, other sequence
    assert (render.calls, cache.hits, cache.misses) == (1, 1, 1)


def test_equal_records_that_are_other_objects_render_anew() -> None:
    """Identity, not equality: a batch decoded again is other objects (and renders
    to the same bytes, at the cost of one rendering)."""
    cache, render = RenderedRecords(1 << 20), Renderer()
    cache.head(run(3), 0, 1, render)
    assert cache.head(run(3), 0, 1, render) == b"[0,1,2]"
    assert render.calls == 2


def test_the_partition_the_format_and_the_count_are_part_of_the_key() -> None:
    cache, render = RenderedRecords(1 << 20), Renderer()
    records = run(4)
    cache.head(records, 0, 1, render)
    cache.head(records, 1, 1, render)  # another partition number in the JSON
    cache.head(records, 0, 2, render)  # another value format
    shorter = [records[0], records[1], records[3]]  # same first and last, fewer between
    assert cache.head(shorter, 0, 1, render) == b"[0,1,3]"
    assert render.calls == 4


def test_the_cache_is_bounded_by_rendered_bytes_least_recent_first() -> None:
    cache, render = RenderedRecords(20), Renderer()
    a, b, c = run(2, 10), run(2, 20), run(2, 30)  # 7 bytes each
    cache.head(a, 0, 1, render)
    cache.head(b, 0, 1, render)
    cache.head(a, 0, 1, render)  # a is now the most recent
    cache.head(c, 0, 1, render)  # 21 bytes: b goes
    assert (len(cache), cache.held_bytes) == (2, 14)
    calls = render.calls
    cache.head(a, 0, 1, render)
    cache.head(c, 0, 1, render)
    assert render.calls == calls
    cache.head(b, 0, 1, render)
    assert render.calls == calls + 1


def test_nothing_is_kept_without_a_budget_or_records() -> None:
    off, render = RenderedRecords(0), Renderer()
    records = run(2)
    off.head(records, 0, 1, render)
    off.head(records, 0, 1, render)
    assert (render.calls, len(off)) == (2, 0)
    on = RenderedRecords(1 << 20)
    assert on.head([], 0, 1, render) == b"[]"
    assert len(on) == 0
    with pytest.raises(ValueError, match="negative"):
        RenderedRecords(-1)

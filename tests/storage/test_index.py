"""The sparse indexes: lookups, round trips through bytes, and rejection of bad files."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storage.embedded.index import IndexCorrupt, OffsetIndex, TimeIndex

increasing_pairs = st.lists(st.tuples(st.integers(1, 1000), st.integers(1, 1000)), max_size=50).map(
    lambda steps: [
        (sum(s[0] for s in steps[: i + 1]), sum(s[1] for s in steps[: i + 1]))
        for i in range(len(steps))
    ]
)


def build_offset_index(pairs: list[tuple[int, int]]) -> OffsetIndex:
    index = OffsetIndex()
    for rel, pos in pairs:
        index.append(rel, pos)
    return index


def test_offset_lookup_is_greatest_entry_at_or_below() -> None:
    index = build_offset_index([(10, 100), (20, 250), (35, 400)])
    assert index.lookup(0) == (0, 0)
    assert index.lookup(9) == (0, 0)
    assert index.lookup(10) == (10, 100)
    assert index.lookup(19) == (10, 100)
    assert index.lookup(20) == (20, 250)
    assert index.lookup(10**9) == (35, 400)


def test_offset_index_refuses_entries_that_do_not_increase() -> None:
    index = build_offset_index([(10, 100)])
    with pytest.raises(ValueError, match="increase"):
        index.append(10, 200)
    with pytest.raises(ValueError, match="increase"):
        index.append(11, 100)


@given(increasing_pairs, st.integers(0, 60_000))
def test_offset_lookup_matches_linear_search(pairs: list[tuple[int, int]], target: int) -> None:
    index = build_offset_index(pairs)
    below = [p for p in pairs if p[0] <= target]
    assert index.lookup(target) == (below[-1] if below else (0, 0))


@given(increasing_pairs)
def test_offset_index_round_trips(pairs: list[tuple[int, int]]) -> None:
    index = build_offset_index(pairs)
    size = pairs[-1][1] if pairs else 0
    again = OffsetIndex.from_bytes(index.to_bytes(), segment_size=size)
    assert list(zip(again.offsets, again.positions, strict=True)) == pairs


@given(increasing_pairs, st.integers(0, 100))
def test_truncate_after_drops_entries_at_or_past_position(
    pairs: list[tuple[int, int]], cut: int
) -> None:
    index = build_offset_index(pairs)
    position = cut * 500
    index.truncate_after(position)
    assert list(zip(index.offsets, index.positions, strict=True)) == [
        p for p in pairs if p[1] < position
    ]


@given(st.binary(min_size=1, max_size=200))
def test_garbage_offset_index_is_rejected_or_fits_the_segment(data: bytes) -> None:
    size = 5000
    try:
        index = OffsetIndex.from_bytes(data, segment_size=size)
    except IndexCorrupt:
        return
    # Whatever parses must still be a usable index: monotonic and within the segment.
    assert len(data) % OffsetIndex.ENTRY_SIZE == 0
    assert all(p <= size for p in index.positions)
    assert index.offsets == sorted(set(index.offsets))
    assert index.positions == sorted(set(index.positions))


def test_offset_index_detects_torn_and_out_of_range_files() -> None:
    good = build_offset_index([(1, 10), (2, 20)]).to_bytes()
    with pytest.raises(IndexCorrupt):
        OffsetIndex.from_bytes(good[:-3], segment_size=100)
    with pytest.raises(IndexCorrupt):
        OffsetIndex.from_bytes(good, segment_size=15)
    swapped = good[16:] + good[:16]
    with pytest.raises(IndexCorrupt):
        OffsetIndex.from_bytes(swapped, segment_size=100)


def test_end_entry_is_appended_by_to_bytes() -> None:
    data = build_offset_index([(5, 50)]).to_bytes(end=(9, 90))
    again = OffsetIndex.from_bytes(data, segment_size=90)
    assert again.offsets == [5, 9]
    assert again.positions == [50, 90]


def test_time_lookup_starts_after_every_entry_below_the_target() -> None:
    index = TimeIndex()
    index.append(100, 10)  # records before relative offset 10 have ts <= 100
    index.append(100, 20)
    index.append(300, 30)
    assert index.lookup(50) == 0
    assert index.lookup(100) == 0
    assert index.lookup(101) == 20
    assert index.lookup(300) == 20
    assert index.lookup(301) == 30


@given(st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=200), st.integers(1, 7))
def test_time_lookup_never_skips_the_first_match(timestamps: list[int], every: int) -> None:
    """Built as the segment builds it, the scan start never lies past the first ts >= target."""
    index = TimeIndex()
    running = -(2**63)
    for rel, ts in enumerate(timestamps):
        if rel and rel % every == 0:
            index.append(running, rel)
        running = max(running, ts)
    for target in {*timestamps, min(timestamps) - 1, max(timestamps) + 1}:
        start = index.lookup(target)
        first = next((i for i, ts in enumerate(timestamps) if ts >= target), len(timestamps))
        assert start <= first
    again = TimeIndex.from_bytes(index.to_bytes())
    assert again.timestamps == index.timestamps
    assert again.offsets == index.offsets


def test_time_index_detects_garbage() -> None:
    index = TimeIndex()
    index.append(5, 1)
    index.append(7, 2)
    data = index.to_bytes()
    with pytest.raises(IndexCorrupt):
        TimeIndex.from_bytes(data + b"\x00")
    with pytest.raises(IndexCorrupt):
        TimeIndex.from_bytes(data[16:] + data[:16])

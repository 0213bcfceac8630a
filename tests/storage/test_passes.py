"""A writer pass's keyed entries: the C `frame_pass` and `answer_pass` against `passes`.

`passes.frame_entries` and `answer_entries` say how a pass's entries become stamped
batches and results; the C twins must give the same bytes, batches and offsets,
place the same results, and refuse what the reference refuses. `make sanitize`
runs these under ASan and UBSan.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from storage.embedded import passes
from storage.embedded.codec import (
    LENGTH_START,
    decode_records,
    frame_batch,
    read_prefix,
    validate_batch,
)
from storage.embedded.spread import MAX_COUNT, MAX_TS, MIN_TS
from storage.records import AppendResult, NewRecord, PackedRecords, pack_records

try:
    from storage.embedded._framing import answer_pass as answer_in_c
    from storage.embedded._framing import frame_pass as frame_in_c
    from storage.embedded._framing import group_pass as group_in_c
except ImportError:
    pytest.skip("the C pass framing is not built", allow_module_level=True)

lenient = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
edges = st.sampled_from([0, 1, -1, MAX_COUNT, MAX_COUNT + 1, MAX_TS, MAX_TS + 1, MIN_TS - 1])
small = st.integers(1, 5)
counts = small | st.integers(1, MAX_COUNT // 4)  # four of the larger ones overflow a batch
timestamps = st.integers(-1000, 1000) | st.integers(MIN_TS, MAX_TS)
packs = st.builds(PackedRecords, st.binary(max_size=60), counts, timestamps, timestamps)


@st.composite
def passes_of(
    draw: st.DrawFn,
    records: st.SearchStrategy[PackedRecords],
    offsets: st.SearchStrategy[int],
    wrong: bool = False,
) -> tuple[Any, ...]:
    """Groups of entries (each partition's, several requests' results lists) and bases;
    `wrong`: one entry's records not storable, if there is an entry."""
    requests = [[None] * draw(st.integers(1, 6)) for _ in range(draw(st.integers(1, 5)))]
    groups: list[list[Any]] = []
    for _ in range(draw(st.integers(0, 6))):
        entries: list[Any] = []
        for _ in range(draw(st.integers(0, 6))):
            results = draw(st.sampled_from(requests))
            slot = draw(st.integers(0, len(results) - 1))
            entries.append((draw(records), results, slot, "the caller's"))
        groups.append(entries)
    bases = [draw(offsets) for _ in groups]
    merged = draw(st.integers(0, 200))
    if wrong and any(groups):
        entries = draw(st.sampled_from([e for e in groups if e]))
        at = draw(st.integers(0, len(entries) - 1))
        packed, *rest = entries[at]
        fields = list(packed)
        fields[draw(st.integers(1, 3))] = draw(edges)  # the count or a timestamp
        entries[at] = (PackedRecords(*fields), *rest)
    return groups, bases, merged


def outcome_of(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except (ValueError, struct.error):
        return "refused"


@lenient
@given(
    st.booleans().flatmap(
        lambda wrong: passes_of(
            packs, st.integers(0, 2**40) | st.sampled_from([MAX_TS, MAX_TS - 3, -1]), wrong
        )
    )
)
@example(([[(PackedRecords(b"ab", MAX_COUNT, 0, 0), [None], 0, 0)] * 2], [0], 10))
@example(([[(PackedRecords(b"ab", 2, 0, 0), [None], 0, 0)] * 2], [MAX_TS - 3], 10))
@example(([[(PackedRecords(b"a" * 50, 2, 5, -5), [None], 0, 0)] * 3], [7], 60))
def test_the_c_framing_of_a_pass_is_the_references(case: tuple[Any, ...]) -> None:
    groups, bases, merged = case
    assert outcome_of(frame_in_c, groups, bases, merged) == outcome_of(
        passes.frame_entries, groups, bases, merged
    )


plain_packs = st.lists(
    st.tuples(st.binary(max_size=40) | st.none(), st.binary(max_size=8) | st.none()),
    min_size=1,
    max_size=5,
).map(lambda pairs: pack_records([NewRecord(v, k) for v, k in pairs], now_ms=11))


@lenient
@given(passes_of(plain_packs, st.integers(0, 2**40)))
def test_a_framed_pass_reads_back_as_its_entries_records_at_their_offsets(
    case: tuple[Any, ...],
) -> None:
    groups, bases, merged = case
    for entries, base, (data, placed, starts) in zip(
        groups, bases, frame_in_c(groups, bases, merged), strict=True
    ):
        assert len(starts) == len(entries)
        offsets: dict[int, bytes | None] = {}
        position = 0
        for batch_base, count, max_ts, size in placed:
            header = validate_batch(data, position)
            assert (header.base_offset, header.record_count, header.max_timestamp) == (
                batch_base,
                count,
                max_ts,
            )
            assert read_prefix(data, position) == (batch_base, size)
            assert size == LENGTH_START + header.batch_length
            _, records = decode_records(data[position : position + size])
            offsets.update((r.offset, r.value) for r in records)
            position += size
        assert position == len(data)
        next_offset = base
        for (packed, _, _, _), start in zip(entries, starts, strict=True):
            assert start == next_offset
            values = [r.value for r in pack_records_back(packed, start)]
            assert [offsets[start + i] for i in range(packed.record_count)] == values
            next_offset += packed.record_count


def pack_records_back(packed: PackedRecords, base: int) -> list[Any]:
    """An entry's records as a batch of its own would decode them."""
    return list(decode_records(frame_batch(packed, base_offset=base))[1])


def answered(fn: Any, groups: list[Any], starts: list[Any], numbers: list[int]) -> Any:
    try:
        fn(AppendResult, numbers, groups, starts)
    except (ValueError, IndexError) as exc:
        return type(exc).__name__
    return None


@lenient
@given(passes_of(packs, st.just(0)), st.data())
def test_the_c_answers_of_a_pass_are_the_references(case: tuple[Any, ...], data: Any) -> None:
    groups, _, _ = case
    starts = [[data.draw(st.integers(0, 2**62)) for _ in entries] for entries in groups]
    if groups and data.draw(st.booleans()):  # something wrong, somewhere
        k = data.draw(st.integers(0, len(groups) - 1))
        how = data.draw(st.sampled_from(["starts", "slot"]))
        if how == "starts":
            starts[k] = [*starts[k], 1]
        elif groups[k]:
            packed, results, _, rest = groups[k][0]
            groups[k][0] = (packed, results, data.draw(st.sampled_from([-1, len(results)])), rest)
    numbers = [data.draw(st.integers(0, 2**31)) for _ in groups]
    # The same entries over copies of their results lists, for each side.
    copies: list[dict[int, list[Any]]] = [{}, {}]
    sides = []
    for copy in copies:
        sides.append(
            [
                [(p, copy.setdefault(id(r), list(r)), s, rest) for p, r, s, rest in entries]
                for entries in groups
            ]
        )
    assert answered(answer_in_c, sides[0], starts, numbers) == answered(
        passes.answer_entries, sides[1], starts, numbers
    )
    assert list(copies[0].values()) == list(copies[1].values())
    for results in copies[0].values():
        assert all(r is None or type(r) is AppendResult for r in results)


@lenient
@given(
    st.lists(st.tuples(st.integers(0, 6), st.lists(st.integers(0, 6), max_size=8)), max_size=5),
    st.lists(st.integers(0, 3), max_size=3),
    st.sampled_from(["fits", "fewer packs", "fewer slots", "a key unhashable"]),
)
def test_the_c_grouping_of_a_pass_is_the_references(
    items: list[tuple[int, list[int]]], known: list[int], how: str
) -> None:
    """Items (a request's partitions) grouped onto partition lists, some of them there
    before: the same lists, the same entries in the same order, on both sides; a
    request whose lists disagree in length, or with a key that cannot be a dict key,
    is refused by both (after the same entries were grouped)."""
    sides: list[tuple[dict[Any, list[Any]], Any]] = []
    for fn in (group_in_c, passes.group_entries):
        groups: dict[Any, list[Any]] = {k: [("there before",)] for k in known}
        outcome: Any = None
        for n, (size, keys) in enumerate(items):
            results: list[Any] = [None] * (size + 1)
            packs = [PackedRecords(b"%d" % k, 1, n, n) for k in keys]
            slots = list(range(len(keys)))
            wanted: list[Any] = list(keys)
            if how == "fewer packs" and packs:
                packs.pop()
            elif how == "fewer slots" and slots:
                slots.pop()
            elif how == "a key unhashable" and wanted:
                wanted[-1] = [wanted[-1]]
            try:
                fn(groups, wanted, packs, results, slots, f"item {n}")
            except (ValueError, TypeError) as exc:
                outcome = type(exc).__name__
                break
        sides.append((groups, outcome))
    assert sides[0] == sides[1]


def test_the_writer_frames_and_answers_with_the_c_twins_when_they_are_built() -> None:
    assert passes.group_pass is group_in_c
    assert passes.frame_pass is frame_in_c
    assert passes.answer_pass is answer_in_c

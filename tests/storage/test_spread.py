"""A request's batches grouped by shard: the C `spread` against `spread.by_shard`.

`by_shard` says how a keyed append's batches reach the writers and which ones it
leaves to the engine's careful checks; the C twin must give the same groups
(the same objects, in the same order) whenever it answers, and answer whenever
the batches are plain ones. `make sanitize` runs these under ASan and UBSan.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage.embedded.spread import MAX_COUNT, MAX_TS, MIN_TS, by_shard
from storage.records import PackedRecords

try:
    from storage.embedded._framing import spread as spread_in_c
except ImportError:
    pytest.skip("the C spread is not built", allow_module_level=True)

lenient = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
edges = st.sampled_from([0, 1, -1, MAX_COUNT, MAX_COUNT + 1, MAX_TS, MAX_TS + 1, MIN_TS - 1])


class Writer:
    """A stand-in shard: only its identity matters to the grouping."""


@st.composite
def requests(draw: st.DrawFn, plain: bool) -> tuple[list[Any], list[str], list[Writer], int]:
    count = draw(st.integers(1, 80))
    writers = [Writer() for _ in range(draw(st.integers(1, 6)))]
    shards = [draw(st.sampled_from(writers)) for _ in range(count)]
    partitions = [f"partition-{p}" for p in range(count)]
    limit = draw(st.integers(0, 40))
    numbers = draw(st.lists(st.integers(0, count - 1), unique=True, min_size=1, max_size=count))
    batches: list[Any] = []
    for p in numbers:
        data = draw(st.binary(max_size=limit))
        first, last = draw(st.integers(MIN_TS, MAX_TS)), draw(st.integers(MIN_TS, MAX_TS))
        batches.append((p, PackedRecords(data, draw(st.integers(1, MAX_COUNT)), first, last)))
    if not plain:  # one thing wrong, somewhere
        at = draw(st.integers(0, len(batches) - 1))
        p, packed = batches[at]
        how = draw(st.sampled_from(["partition", "twice", "count", "first", "last", "size"]))
        if how == "partition":
            p = draw(st.sampled_from([-1, count, count + 5, 2**64]))
        elif how == "twice":
            p = batches[at - 1][0] if len(batches) > 1 else p
        elif how == "size":
            packed = packed._replace(data=packed.data + b"x" * (limit + 1 - len(packed.data)))
        else:
            field = {"count": "record_count", "first": "first_timestamp"}.get(how, "max_timestamp")
            packed = packed._replace(**{field: draw(edges)})
        batches[at] = (p, packed)
    return batches, partitions, shards, limit


def same(a: Any, b: Any) -> None:
    assert a is not None
    assert b is not None
    assert len(a) == len(b)
    for (shard_a, parts_a, packs_a, slots_a), (shard_b, parts_b, packs_b, slots_b) in zip(
        a, b, strict=True
    ):
        assert shard_a is shard_b
        assert all(x is y for x, y in zip(parts_a, parts_b, strict=True))
        assert all(x is y for x, y in zip(packs_a, packs_b, strict=True))
        assert slots_a == slots_b


@given(requests(plain=True))
@settings(lenient)
def test_plain_batches_are_grouped_as_the_reference_groups_them(case: Any) -> None:
    batches, partitions, shards, limit = case
    expected = by_shard(batches, partitions, shards, limit)
    same(spread_in_c(batches, partitions, shards, limit), expected)
    same(spread_in_c(tuple(batches), partitions, shards, limit), expected)
    assert expected is not None
    assert sorted(i for _, _, _, slots in expected for i in slots) == list(range(len(batches)))


@given(requests(plain=False))
@settings(lenient)
def test_what_the_reference_leaves_to_the_checks_the_c_leaves_too(case: Any) -> None:
    batches, partitions, shards, limit = case
    expected = by_shard(batches, partitions, shards, limit)
    answer = spread_in_c(batches, partitions, shards, limit)
    if expected is None:
        assert answer is None
    else:
        same(answer, expected)


def test_what_the_c_does_not_handle_it_declines() -> None:
    packed = PackedRecords(b"r", 1, 0, 0)
    shards = [Writer()] * 2
    assert spread_in_c([(0, packed)], ["p0", "p1"], shards, 10) is not None
    cases: list[tuple[Any, list[str], int]] = [
        ([(0, tuple(packed[:3]))], ["p0", "p1"], 10),  # not four fields
        ([(0, (bytearray(b"r"), 1, 0, 0))], ["p0", "p1"], 10),  # records not bytes
        ([(0, PackedRecords(b"r", 1.0, 0, 0))], ["p0", "p1"], 10),  # type: ignore[arg-type]
        ([[0, packed]], ["p0", "p1"], 10),  # a pair that is not a tuple
        ([(0, packed)], ["p0"], 10),  # a shard list of another length
        ([(0, packed)], ["p0", "p1"], 2**64),
    ]
    for batches, partitions, limit in cases:
        assert spread_in_c(batches, partitions, shards, limit) is None
    many = [Writer() for _ in range(65)]
    batches = [(p, packed) for p in range(65)]
    names = [f"p{p}" for p in range(65)]
    assert spread_in_c(batches, names, many, 10) is None  # more than 64 shards
    same(spread_in_c(batches[:64], names, many, 10), by_shard(batches[:64], names, many, 10))

"""The assignors: every partition to exactly one subscribed member; sticky is even
and moves as little as it can."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.coordinator.assignors import (
    ASSIGNORS,
    TopicPartition,
    range_assignor,
    round_robin,
    sticky,
)

TOPICS = ["a", "b", "c"]
members_st = st.lists(st.sampled_from([f"m{i:02d}" for i in range(12)]), min_size=1, unique=True)
counts_st = st.fixed_dictionaries({t: st.integers(0, 20) for t in TOPICS})


def check_complete(
    assignment: dict[str, list[TopicPartition]], subs: dict[str, list[str]], counts: dict[str, int]
) -> None:
    owners = Counter(tp for tps in assignment.values() for tp in tps)
    wanted = {TopicPartition(t, p) for ts in subs.values() for t in ts for p in range(counts[t])}
    assert set(owners) == wanted
    assert all(n == 1 for n in owners.values())
    for member, tps in assignment.items():
        assert all(tp.topic in subs[member] for tp in tps)


@settings(deadline=None)  # up to 60 members: a loaded machine takes its time
@given(members_st, st.data(), counts_st)
def test_every_assignor_hands_each_partition_to_one_subscribed_member(
    members: list[str], data: st.DataObject, counts: dict[str, int]
) -> None:
    subs = {
        m: data.draw(st.lists(st.sampled_from(TOPICS), min_size=1, unique=True)) for m in members
    }
    for assignor in ASSIGNORS.values():
        check_complete(assignor(subs, counts, {}), subs, counts)


@settings(deadline=None)
@given(members_st, st.integers(0, 60))
def test_one_subscription_spreads_evenly(members: list[str], n: int) -> None:
    subs = {m: ["a"] for m in members}
    for assignor in (sticky, range_assignor, round_robin):
        loads = [len(v) for v in assignor(subs, {"a": n}, {}).values()]
        assert max(loads) - min(loads) <= 1


@settings(deadline=None)
@given(members_st, st.integers(0, 60), st.data())
def test_sticky_moves_only_what_evening_out_needs(
    members: list[str], n: int, data: st.DataObject
) -> None:
    subs = {m: ["a"] for m in members}
    before = sticky(subs, {"a": n}, {})
    # One member leaves: only its partitions move.
    if len(members) > 1:
        gone = data.draw(st.sampled_from(members))
        after = sticky({m: ["a"] for m in members if m != gone}, {"a": n}, before)
        for m, tps in after.items():
            assert set(before[m]) <= set(tps)
        loads = [len(v) for v in after.values()]
        assert max(loads) - min(loads) <= 1
    # One member joins: it gets its share, and the others lose only what it takes.
    newcomer = "zz"
    after = sticky({**subs, newcomer: ["a"]}, {"a": n}, before)
    moved = sum(len(set(before[m]) - set(after[m])) for m in members)
    assert moved == len(after[newcomer]) == n // (len(members) + 1)


def test_range_and_round_robin_match_kafka() -> None:
    subs = {"c1": ["t"], "c2": ["t"]}
    assert range_assignor(subs, {"t": 5}, {}) == {
        "c1": [TopicPartition("t", p) for p in (0, 1, 2)],
        "c2": [TopicPartition("t", p) for p in (3, 4)],
    }
    assert round_robin(subs, {"t": 5}, {}) == {
        "c1": [TopicPartition("t", p) for p in (0, 2, 4)],
        "c2": [TopicPartition("t", p) for p in (1, 3)],
    }


def _sticky_first_pass(
    subs: dict[str, list[str]], counts: dict[str, int]
) -> dict[str, list[TopicPartition]]:
    """Sticky's rule for partitions nobody keeps, spelled out one partition at a
    time: to the eligible member with the fewest, ties to the lowest id."""
    owned: dict[str, list[TopicPartition]] = {m: [] for m in sorted(subs)}
    for topic in sorted({t for ts in subs.values() for t in ts}):
        for p in range(counts[topic]):
            candidates = [m for m in owned if topic in subs[m]]
            owned[min(candidates, key=lambda m: (len(owned[m]), m))].append(
                TopicPartition(topic, p)
            )
    return owned


@settings(deadline=None)
@given(members_st, st.data(), counts_st)
def test_sticky_from_nothing_hands_each_partition_to_the_least_loaded_eligible_member(
    members: list[str], data: st.DataObject, counts: dict[str, int]
) -> None:
    """With no previous owners, before evening out, sticky follows its rule exactly
    (what it does with a heap a topic, the rule does one partition at a time): the
    same partitions as the rule, once evened out from the same start."""
    subs = {
        m: data.draw(st.lists(st.sampled_from(TOPICS), min_size=1, unique=True)) for m in members
    }
    first = _sticky_first_pass(subs, counts)
    # The rule's placement is kept as it is by sticky when it is handed in as previous,
    # so both must even out to the same assignment.
    assert sticky(subs, counts, {}) == sticky(subs, counts, first)

"""The coordinator's invariants under any sequence of joins, leaves, heartbeats,
timeouts, commits and clock jumps (a hypothesis state machine over the pure core).

- never two owners of a partition in one generation, and a generation names one
  assignment for ever;
- generations only grow;
- a commit lands only from the owner of the partition in the current generation:
  a fenced commit never lands.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from gateway.coordinator import document, membership
from gateway.coordinator.assignors import TopicPartition
from gateway.coordinator.membership import Group, GroupState, MustRejoin, ProtocolMismatch

MEMBERS = st.sampled_from(["a", "b", "c", "d", "e"])
TOPICS = {"t1": 4, "t2": 3}
TIMEOUT_MS = 1_000


class CoordinatorMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.group = Group()
        self.now = 1_000_000
        self.assignments: dict[int, tuple[tuple[str, tuple[TopicPartition, ...]], ...]] = {}
        self.highest = 0
        self.commits: dict[TopicPartition, tuple[str, int]] = {}

    def _became(self, group: Group) -> None:
        assert group.generation >= self.group.generation
        # The stored form says the same.
        assert document.decode(document.encode(group)) == group
        self.group = group

    @rule(
        member=MEMBERS,
        topics=st.lists(st.sampled_from(sorted(TOPICS)), min_size=1, unique=True),
        assignor=st.sampled_from(["sticky", "range", "round-robin"]),
    )
    def join(self, member: str, topics: list[str], assignor: str) -> None:
        try:
            joined = membership.join(
                self.group, member, topics, TIMEOUT_MS, TOPICS, self.now, assignor=assignor
            )
        except ProtocolMismatch:
            assert self.group.members
            assert assignor != self.group.assignor
            return
        self._became(joined)
        joined_member = joined.member(member)
        assert joined_member is not None
        assert joined_member.joined_generation == joined.generation

    @rule(member=MEMBERS)
    def leave(self, member: str) -> None:
        self._became(membership.leave(self.group, member, self.now))
        assert self.group.member(member) is None

    @rule(member=MEMBERS, behind=st.integers(0, 2))
    def heartbeat(self, member: str, behind: int) -> None:
        named = self.group.generation - behind
        live = membership.expire(self.group, self.now)
        found = live.member(member)
        may = found is not None and found.joined_generation == live.generation == named
        try:
            group = membership.heartbeat(self.group, member, named, self.now)
        except MustRejoin:
            assert not may
            return
        assert may
        self._became(group)

    @rule(ms=st.integers(-5_000, 3_000))
    def clock_jumps(self, ms: int) -> None:
        self.now += ms

    @rule(
        member=MEMBERS,
        behind=st.integers(0, 2),
        topic=st.sampled_from(sorted(TOPICS)),
        partition=st.integers(0, 3),
    )
    def commit(self, member: str, behind: int, topic: str, partition: int) -> None:
        generation = self.group.generation - behind
        tp = TopicPartition(topic, partition)
        try:
            group = membership.heartbeat(self.group, member, generation, self.now)
        except MustRejoin:
            return  # fenced: nothing lands
        self._became(group)
        if tp not in group.assigned(member):
            return  # refused: not this member's partition
        # It lands: it must come from the one owner in the current generation.
        owners = [m for m, tps in group.assignment if tp in tps]
        assert owners == [member]
        assert generation == group.generation
        self.commits[tp] = (member, generation)

    @invariant()
    def one_owner_per_partition_per_generation(self) -> None:
        group = self.group
        owned = Counter(tp for _, tps in group.assignment for tp in tps)
        assert all(n == 1 for n in owned.values())
        seen = self.assignments.setdefault(group.generation, group.assignment)
        assert seen == group.assignment
        assert group.generation >= self.highest
        self.highest = group.generation
        if group.members:
            assert group.state in (GroupState.STABLE, GroupState.REBALANCING)
            subscribed = {t for m in group.members for t in m.topics}
            assert set(owned) == {
                TopicPartition(t, p) for t in subscribed for p in range(TOPICS[t])
            }
        else:
            assert not owned


CoordinatorMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None
)
TestCoordinator = CoordinatorMachine.TestCase

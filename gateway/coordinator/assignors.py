"""Partition assignors: which member of a group reads which partition. Pure.

Each takes the members' subscriptions (member id → topics), the partition
count of every topic and, for the sticky one, the previous assignment, and
returns member id → sorted partitions. Every partition of a subscribed topic
goes to exactly one member subscribed to its topic.

- `sticky` (the default): an even spread that keeps every partition where it
  was when it can. A partition stays with its previous owner if that member
  is still subscribed; the rest go, one by one, to the eligible member with
  the fewest; then, while some member holds two more than an eligible other,
  one partition moves from the fullest to the emptiest. With one subscription
  for all members, counts differ by at most one and a rebalance moves only
  what evening out requires (a member that leaves: its partitions; one that
  joins: its share).
- `range`: per topic, members sorted by id take consecutive ranges, the first
  ones one more when it does not divide (Kafka's RangeAssignor).
- `round-robin`: all partitions sorted by topic and number dealt in turn to
  the members sorted by id, skipping members not subscribed to the topic
  (Kafka's RoundRobinAssignor).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple


class TopicPartition(NamedTuple):
    topic: str
    partition: int


Subscriptions = Mapping[str, Sequence[str]]
Assignment = dict[str, list[TopicPartition]]
Assignor = Callable[
    [Subscriptions, Mapping[str, int], Mapping[str, Sequence[TopicPartition]]], Assignment
]


def _all_partitions(
    subscriptions: Subscriptions, partitions: Mapping[str, int]
) -> list[TopicPartition]:
    topics = sorted({t for topics in subscriptions.values() for t in topics})
    return [TopicPartition(t, p) for t in topics for p in range(partitions.get(t, 0))]


def _sorted(assignment: Assignment) -> Assignment:
    return {m: sorted(tps) for m, tps in sorted(assignment.items())}


def sticky(
    subscriptions: Subscriptions,
    partitions: Mapping[str, int],
    previous: Mapping[str, Sequence[TopicPartition]],
) -> Assignment:
    eligible: dict[str, set[str]] = {m: set(ts) for m, ts in subscriptions.items()}
    owned: Assignment = {m: [] for m in sorted(subscriptions)}
    owner_of = {tp: m for m, tps in previous.items() for tp in tps}
    free: list[TopicPartition] = []
    for tp in _all_partitions(subscriptions, partitions):
        owner = owner_of.get(tp)
        if owner is not None and tp.topic in eligible.get(owner, ()):
            owned[owner].append(tp)
        else:
            free.append(tp)
    # Each free partition to the eligible member with the fewest, ties to the lowest
    # id. The free come topic by topic, so one heap of (count, member) a topic finds
    # that member (a join storm's first assignment: 256 partitions, 100 members).
    for topic, tps in itertools.groupby(free, key=lambda tp: tp.topic):
        heap = [(len(owned[m]), m) for m in owned if topic in eligible[m]]
        heapq.heapify(heap)
        for tp in tps:
            count, member = heap[0]
            owned[member].append(tp)
            heapq.heapreplace(heap, (count + 1, member))
    # Even out: move one partition at a time from a member holding two more than an
    # eligible other. Each move lowers the sum of squared counts, so this ends.
    while True:
        move = _best_move(owned, eligible)
        if move is None:
            return _sorted(owned)
        giver, taker, tp = move
        owned[giver].remove(tp)
        owned[taker].append(tp)


def _best_move(
    owned: Assignment, eligible: Mapping[str, set[str]]
) -> tuple[str, str, TopicPartition] | None:
    by_load = sorted(owned, key=lambda m: (-len(owned[m]), m))
    for giver in by_load:
        for taker in reversed(by_load):
            if len(owned[giver]) - len(owned[taker]) < 2:
                break
            # The newest partition the giver holds that the taker may read.
            for tp in reversed(owned[giver]):
                if tp.topic in eligible[taker]:
                    return giver, taker, tp
    return None


def range_assignor(
    subscriptions: Subscriptions,
    partitions: Mapping[str, int],
    previous: Mapping[str, Sequence[TopicPartition]],
) -> Assignment:
    owned: Assignment = {m: [] for m in subscriptions}
    for topic in sorted({t for ts in subscriptions.values() for t in ts}):
        readers = sorted(m for m, ts in subscriptions.items() if topic in ts)
        count = partitions.get(topic, 0)
        share, extra = divmod(count, len(readers))
        start = 0
        for i, member in enumerate(readers):
            size = share + (1 if i < extra else 0)
            owned[member] += [TopicPartition(topic, p) for p in range(start, start + size)]
            start += size
    return _sorted(owned)


def round_robin(
    subscriptions: Subscriptions,
    partitions: Mapping[str, int],
    previous: Mapping[str, Sequence[TopicPartition]],
) -> Assignment:
    members = sorted(subscriptions)
    owned: Assignment = {m: [] for m in members}
    turn = 0
    for tp in _all_partitions(subscriptions, partitions):
        for _ in range(len(members)):
            member = members[turn % len(members)]
            turn += 1
            if tp.topic in subscriptions[member]:
                owned[member].append(tp)
                break
    return _sorted(owned)


ASSIGNORS: dict[str, Assignor] = {
    "sticky": sticky,
    "range": range_assignor,
    "round-robin": round_robin,
}
DEFAULT_ASSIGNOR = "sticky"

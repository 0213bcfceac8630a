"""A consumer group's health in one word, Burrow-style: OK, WARN, ERR or STOP. Pure.

Burrow (LinkedIn's lag checker) judges a consumer by how its committed
offsets and its lag move. We keep one commit per partition, so the rule reads
the last commit's age, the lag and the time behind (how old the next unread
record is), at `now_ms`:

- OK: nothing to read (lag 0), or reading and committing recently, and the
  next unread record is younger than `warn_behind_ms`.
- WARN (lagging): members commit, but the next unread record is older than
  `warn_behind_ms`: the group reads more slowly than its topics grow.
- ERR (stalled): records wait (lag > 0) while members are in the group, yet
  no commit for `stall_ms`, counted from the later of the last commit and the
  start of the current generation (new owners get a full `stall_ms`): the
  members are stuck.
- STOP (stopped): records wait and the group has no members: nobody reads.

A group's status is its worst partition's (OK < WARN < ERR < STOP).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

WARN_BEHIND_MS = 60_000
STALL_MS = 5 * 60_000


class Status(Enum):
    OK = 0
    WARN = 1
    ERR = 2
    STOP = 3

    @property
    def label(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class PartitionLag:
    lag: int  # records between the committed offset (or the start) and the end
    time_behind_ms: int  # now - timestamp of the next unread record; 0 when lag is 0
    committed_ms: int | None  # when the last commit landed; None: never


def partition_status(
    lag: PartitionLag,
    *,
    has_members: bool,
    generation_ms: int,
    now_ms: int,
    warn_behind_ms: int = WARN_BEHIND_MS,
    stall_ms: int = STALL_MS,
) -> Status:
    if lag.lag <= 0:
        return Status.OK
    if not has_members:
        return Status.STOP
    last_progress = lag.committed_ms if lag.committed_ms is not None else generation_ms
    if now_ms - max(last_progress, generation_ms) > stall_ms:
        return Status.ERR
    if lag.time_behind_ms > warn_behind_ms:
        return Status.WARN
    return Status.OK


def group_status(statuses: Iterable[Status]) -> Status:
    return max(statuses, key=lambda s: s.value, default=Status.OK)

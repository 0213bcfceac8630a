"""The Burrow-style status rule, as a pure function (see gateway/groups/status.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.groups.status import (
    STALL_MS,
    WARN_BEHIND_MS,
    PartitionLag,
    Status,
    group_status,
    partition_status,
)

NOW = 10_000_000


def status(
    lag: int, behind: int, committed_ms: int | None, *, members: bool = True, generation_ms: int = 0
) -> Status:
    return partition_status(
        PartitionLag(lag, behind, committed_ms),
        has_members=members,
        generation_ms=generation_ms,
        now_ms=NOW,
    )


def test_each_verdict() -> None:
    assert status(0, 0, None, members=False) is Status.OK  # nothing to read
    assert status(5, 100, NOW - 1_000) is Status.OK  # reading, recent
    assert status(5, WARN_BEHIND_MS + 1, NOW - 1_000) is Status.WARN  # lagging
    assert status(5, 100, NOW - STALL_MS - 1) is Status.ERR  # stalled: no commit for long
    assert status(5, 100, None, generation_ms=NOW - STALL_MS - 1) is Status.ERR  # never committed
    assert status(5, 100, NOW - 1_000, members=False) is Status.STOP  # nobody reads
    # A new generation gives its owners a full stall_ms.
    assert status(5, 100, NOW - STALL_MS - 1, generation_ms=NOW - 1_000) is Status.OK


@given(st.integers(0, 100), st.integers(0, 10**8), st.none() | st.integers(0, NOW), st.booleans())
def test_no_lag_is_ok_and_no_members_with_lag_is_stop(
    lag: int, behind: int, committed_ms: int | None, members: bool
) -> None:
    verdict = status(lag, behind, committed_ms, members=members)
    if lag == 0:
        assert verdict is Status.OK
    elif not members:
        assert verdict is Status.STOP
    else:
        assert verdict is not Status.STOP


def test_a_group_is_as_bad_as_its_worst_partition() -> None:
    assert group_status([]) is Status.OK
    assert group_status([Status.OK, Status.WARN, Status.OK]) is Status.WARN
    assert group_status([Status.WARN, Status.STOP, Status.ERR]) is Status.STOP

"""Cursor rules of a member's position, as pure functions (gateway/groups/positions.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gateway.coordinator.assignors import TopicPartition
from gateway.groups import positions
from gateway.groups.positions import Position, UnknownCursor, plan, start_offsets

A = TopicPartition("t", 0)
B = TopicPartition("t", 1)


def test_the_answered_cursor_acknowledges_and_the_one_before_retries() -> None:
    pos = Position(
        generation=3, seq=2, came_with="c1", answered="c2", start={A: 5, B: 1}, after={A: 9}
    )
    ack = plan(pos, "c2", (A, B))
    assert (ack.start, ack.until) == ({A: 9, B: 1}, None)
    retry = plan(pos, "c1", (A, B))
    assert (retry.start, retry.until, retry.retry_of) == ({A: 5, B: 1}, {A: 9}, pos)
    fresh = plan(pos, None, (A, B))
    assert (fresh.start, fresh.until) == ({A: 5, B: 1}, None)
    with pytest.raises(UnknownCursor):
        plan(pos, "c0", (A, B))
    with pytest.raises(UnknownCursor):
        plan(None, "c2", (A, B))


def test_a_commit_acknowledges_too() -> None:
    planned = plan(Position(generation=1, answered="x", start={A: 5}), "x", (A, B))
    assert start_offsets(planned, (A, B), {A: 7}) == {A: 7, B: None}
    assert start_offsets(planned, (A, B), {A: 2, B: 4}) == {A: 5, B: 4}


def test_positions_round_trip_and_cursors_name_their_generation() -> None:
    pos = Position(
        generation=4, seq=9, came_with=None, answered="4-9-ab", start={A: 1}, after={A: 2, B: 0}
    )
    assert positions.decode(4, positions.encode(pos)) == pos
    codec, other = positions.Codec(), positions.Codec()
    assert codec.decode(4, codec.encode(pos)) == pos
    assert other.decode(4, codec.encode(pos)) == pos  # one another process wrote
    assert codec.decode(5, codec.encode(pos)) == replace(pos, generation=5)
    cursor = codec.new_cursor(12, 3)
    assert positions.cursor_generation(cursor) == 12
    assert len({cursor, codec.new_cursor(12, 3), other.new_cursor(12, 3)}) == 3
    assert positions.cursor_generation("nonsense") is None

"""A member's reading position and the cursors that acknowledge it. Pure.

The position moves only on what the client acknowledges (the cure for the
REST proxy that loses records when a reply is lost, kafka-rest #582):

- every group fetch reply carries a new `cursor`; the position remembers the
  cursor the fetch came with (`came_with`), the one it answered (`answered`),
  where the reply's records start (`start`, the acknowledged position) and
  where they end (`after`);
- a fetch with the answered cursor acknowledges that reply: it reads on from
  `after`;
- a fetch with the cursor it came with is a retry of the last reply (its
  answer was lost): it gets exactly the same records and the same cursor;
- a fetch without cursor reads from `start`, the last acknowledged position;
- a commit acknowledges too: a partition never reads from before its
  committed offset.

A position belongs to one generation of its member; after a rebalance the
member reads from the committed offsets. It is stored in the GroupStore, so
any gateway serves the member's next fetch.
"""

from __future__ import annotations

import itertools
import secrets
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.coordinator.assignors import TopicPartition

Offsets = Mapping[TopicPartition, int]


@dataclass(frozen=True, slots=True)
class Position:
    generation: int
    seq: int = 0  # fetches answered in this generation (rotates the fair start)
    came_with: str | None = None
    answered: str | None = None
    start: dict[TopicPartition, int] = field(default_factory=dict)
    after: dict[TopicPartition, int] = field(default_factory=dict)


def cursor_generation(cursor: str) -> int | None:
    head, _, _ = cursor.partition("-")
    return int(head) if head.isdigit() and len(head) < 19 else None


def _pairs(offsets: Offsets) -> list[list[Any]]:
    return [[tp.topic, tp.partition, o] for tp, o in sorted(offsets.items())]


def _offsets(pairs: list[list[Any]]) -> dict[TopicPartition, int]:
    return {TopicPartition(str(t), int(p)): int(o) for t, p, o in pairs}


def encode(position: Position) -> bytes:
    return orjson.dumps(
        {
            "seq": position.seq,
            "in": position.came_with,
            "out": position.answered,
            "start": _pairs(position.start),
            "after": _pairs(position.after),
        }
    )


def decode(generation: int, body: bytes) -> Position:
    doc = orjson.loads(body)
    return Position(
        generation=generation,
        seq=int(doc["seq"]),
        came_with=doc["in"],
        answered=doc["out"],
        start=_offsets(doc["start"]),
        after=_offsets(doc["after"]),
    )


DECODED_POSITIONS = 4096
"""Positions a `Codec` remembers having encoded (the most recent)."""


class Codec:
    """`encode`, `decode` and new cursors for one process.

    A member's fetch reads the position its previous fetch wrote, nearly always
    through the same process: the positions encoded last are remembered by
    their bytes, so that one is not parsed again (a cache of a pure function;
    a position's dictionaries are never changed once made). A cursor is unique
    per reply without a system call: a random part per codec and a counter."""

    def __init__(self) -> None:
        # FIFO by insertion: an OrderedDict lets the oldest go in O(1) (a dict's
        # first key is found by skipping the slots its earlier deletions left).
        self._known: OrderedDict[bytes, Position] = OrderedDict()
        self._prefix = secrets.token_hex(6)
        self._issued = itertools.count()

    def new_cursor(self, generation: int, seq: int) -> str:
        """An opaque cursor: unique per reply, naming the generation it belongs to."""
        return f"{generation}-{seq}-{self._prefix}{next(self._issued):x}"

    def encode(self, position: Position) -> bytes:
        body = encode(position)
        known = self._known
        if len(known) >= DECODED_POSITIONS:
            known.popitem(last=False)
        known[body] = position
        return body

    def decode(self, generation: int, body: bytes) -> Position:
        known = self._known.get(body)
        if known is not None and known.generation == generation:
            return known
        return decode(generation, body)


class UnknownCursor(Exception):
    """A cursor that is neither the member's latest reply's nor the one before it."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What a fetch reads: from `start`; a retry reads exactly up to `until`."""

    start: dict[TopicPartition, int]
    until: dict[TopicPartition, int] | None  # a retry: the same records as last time
    retry_of: Position | None


def plan(
    position: Position | None, cursor: str | None, assigned: tuple[TopicPartition, ...]
) -> Plan:
    """Where a fetch with `cursor` reads, before committed offsets and the reset policy
    fill in the partitions it names no position for. Raises UnknownCursor."""
    if position is None:
        if cursor is not None:
            raise UnknownCursor(cursor)
        return Plan({}, None, None)
    if cursor is None:
        return Plan(dict(position.start), None, None)
    if cursor == position.answered:
        return Plan({**position.start, **position.after}, None, None)
    if cursor == position.came_with:
        return Plan(dict(position.start), dict(position.after), position)
    raise UnknownCursor(cursor)


def start_offsets(
    planned: Plan,
    assigned: tuple[TopicPartition, ...],
    committed: Offsets,
) -> dict[TopicPartition, int | None]:
    """Each assigned partition's start: the planned position, never before the
    committed offset; None where neither exists (the reset policy decides)."""
    out: dict[TopicPartition, int | None] = {}
    for tp in assigned:
        known = [o for o in (planned.start.get(tp), committed.get(tp)) if o is not None]
        out[tp] = max(known) if known else None
    return out

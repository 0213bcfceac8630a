"""A `Group` as the bytes the GroupStore keeps (JSON), and back. Pure.

The store sees only the generation and the member ids (`membership`); the
document carries the rest. Topic names in it are the storage names, so a
group's document never needs the tenant to be read.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.coordinator.assignors import TopicPartition
from gateway.coordinator.membership import Group, Member, ResetPolicy
from storage.groups import Membership

FORMAT = 1


def encode(group: Group) -> bytes:
    return orjson.dumps(
        {
            "format": FORMAT,
            "generation": group.generation,
            "assignor": group.assignor,
            "reset": group.reset.value,
            "changed_ms": group.changed_ms,
            "partitions": [[t, n] for t, n in group.partitions],
            "members": [
                [
                    m.member_id,
                    list(m.topics),
                    m.session_timeout_ms,
                    m.last_seen_ms,
                    m.joined_generation,
                ]
                for m in group.members
            ],
            "assignment": [
                [m, [[tp.topic, tp.partition] for tp in tps]] for m, tps in group.assignment
            ],
        }
    )


def decode(body: bytes) -> Group:
    doc: dict[str, Any] = orjson.loads(body)
    return Group(
        generation=int(doc["generation"]),
        assignor=str(doc["assignor"]),
        reset=ResetPolicy(doc["reset"]),
        changed_ms=int(doc["changed_ms"]),
        partitions=tuple((str(t), int(n)) for t, n in doc["partitions"]),
        members=tuple(
            Member(str(i), tuple(ts), int(timeout), int(seen), int(joined))
            for i, ts, timeout, seen, joined in doc["members"]
        ),
        assignment=tuple(
            (str(m), tuple(TopicPartition(str(t), int(p)) for t, p in tps))
            for m, tps in doc["assignment"]
        ),
    )


def membership(group: Group) -> Membership:
    """What the store fences with, and the document."""
    return Membership(
        generation=group.generation,
        members=frozenset(m.member_id for m in group.members),
        body=encode(group),
    )

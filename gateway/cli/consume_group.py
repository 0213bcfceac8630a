"""`tidegate consume TOPIC --group G`: read as a member of a consumer group.

The command joins the group (`POST /v1/groups/G/members`), fetches with the
previous reply's cursor (so a lost reply is read again, never skipped),
prints each reply's records as NDJSON and commits them once printed (the next
offset of every partition in the reply), so a consumer stopped at any moment
has committed only what it wrote. A new generation (`409` with `rejoin`)
rejoins under the same member id and reads on from the committed offsets.
It leaves the group on exit, Ctrl-C included, so its partitions move to the
remaining members at once instead of after the session timeout. `--from
earliest|latest` is the group's reset policy for partitions without a
commit. Without `--follow` the command exits when a fetch finds nothing left.
"""

from __future__ import annotations

import argparse
import contextlib
from typing import Any, TextIO

import httpx
import orjson

from gateway.cli.remote import checked, client, problem_of

FOLLOW_WAIT_MS = 10_000
DRAIN_WAIT_MS = 200  # without --follow: how long a fetch waits before "nothing left"
PAGE_RECORDS = 1000
REJOIN_PROBLEMS = ("rebalance-in-progress", "stale-generation")


class GroupMember:
    """One member's session: join, fetch with the cursor, commit, leave."""

    def __init__(self, api: httpx.Client, group: str, topic: str, reset: str) -> None:
        self.api = api
        self.base = f"/v1/groups/{group}"
        self.topic = topic
        self.reset = reset
        self.member_id: str | None = None
        self.generation = 0
        self.cursor: str | None = None

    def join(self) -> None:
        body: dict[str, Any] = {"topics": [self.topic], "auto_offset_reset": self.reset}
        if self.member_id is not None:
            body["member_id"] = self.member_id
        reply = checked(self.api.post(f"{self.base}/members", json=body)).json()
        self.member_id = reply["member_id"]
        self.generation = reply["generation"]
        self.cursor = None  # after a (re)join reading starts from the commits

    def fetch(self, wait_ms: int) -> list[dict[str, Any]] | None:
        """The next records, or None when the group moved on (rejoined already)."""
        params = {
            "member_id": str(self.member_id),
            "max_records": str(PAGE_RECORDS),
            "max_wait_ms": str(wait_ms),
        }
        if self.cursor is not None:
            params["cursor"] = self.cursor
        response = self.api.get(f"{self.base}/records", params=params)
        if self._must_rejoin(response):
            return None
        reply = checked(response).json()
        self.cursor = reply["cursor"]
        self.generation = reply["generation"]
        records: list[dict[str, Any]] = reply["records"]
        return records

    def commit(self, records: list[dict[str, Any]]) -> None:
        """Commit past every record given; a new generation means rejoining instead."""
        next_offsets: dict[tuple[str, int], int] = {}
        for record in records:
            place = (record["topic"], record["partition"])
            next_offsets[place] = max(next_offsets.get(place, 0), record["offset"] + 1)
        if not next_offsets:
            return
        body = {
            "member_id": self.member_id,
            "generation": self.generation,
            "offsets": [
                {"topic": topic, "partition": partition, "offset": offset}
                for (topic, partition), offset in sorted(next_offsets.items())
            ],
        }
        response = self.api.post(f"{self.base}/offsets", json=body)
        if not self._must_rejoin(response):
            checked(response)

    def leave(self) -> None:
        if self.member_id is None:
            return
        with contextlib.suppress(httpx.HTTPError):
            self.api.delete(f"{self.base}/members/{self.member_id}")
        self.member_id = None

    def _must_rejoin(self, response: httpx.Response) -> bool:
        if response.status_code != 409:
            return False
        problem_type = str(problem_of(response).get("type", ""))
        if not problem_type.endswith(REJOIN_PROBLEMS):
            return False
        self.join()
        return True


def consume_group(args: argparse.Namespace, out: TextIO) -> int:
    if args.start not in ("earliest", "latest"):
        raise ValueError("with --group, --from takes earliest or latest (the group's reset policy)")
    if args.partition is not None:
        raise ValueError("with --group the group assigns the partitions: drop --partition")
    limit: int | None = args.max_records
    written = 0
    wait_ms = FOLLOW_WAIT_MS if args.follow else DRAIN_WAIT_MS
    with client(args) as api:
        api.timeout = httpx.Timeout(30.0, read=wait_ms / 1000 + 30.0)
        member = GroupMember(api, args.group, args.topic, args.start)
        try:
            member.join()
            while limit is None or written < limit:
                records = member.fetch(wait_ms)
                if records is None:
                    continue  # rejoined: read on from the commits
                if not records and not args.follow:
                    break
                if limit is not None:
                    records = records[: limit - written]
                for record in records:
                    out.write(orjson.dumps(record).decode() + "\n")
                out.flush()
                written += len(records)
                member.commit(records)
        finally:
            member.leave()
    return 0

"""A group member as a test drives it over HTTP: join, fetch with its cursor, commit.

A thin wrapper over httpx calls of the public API, so the tests read like a
consumer loop; it keeps what a real client keeps (member id, generation,
cursor, assignment) and nothing the server should know.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx


class Member:
    def __init__(
        self, api: httpx.Client, group: str, topics: list[str], *, session_timeout_ms: int = 10_000
    ) -> None:
        self.api = api
        self.group = group
        self.topics = topics
        self.session_timeout_ms = session_timeout_ms
        self.member_id: str | None = None
        self.generation = -1
        self.assignment: set[tuple[str, int]] = set()
        self.cursor: str | None = None

    def join(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "topics": self.topics,
            "session_timeout_ms": self.session_timeout_ms,
        }
        if self.member_id is not None:
            body["member_id"] = self.member_id
        r = self.api.post(f"/v1/groups/{self.group}/members", json=body)
        assert r.status_code == 200, r.text
        reply: dict[str, Any] = r.json()
        self.member_id = reply["member_id"]
        self.generation = reply["generation"]
        self.assignment = {(a["topic"], a["partition"]) for a in reply["assignment"]}
        self.cursor = None
        return reply

    def heartbeat(self) -> httpx.Response:
        return self.api.post(
            f"/v1/groups/{self.group}/members/{self.member_id}/heartbeat",
            json={"generation": self.generation},
        )

    def fetch_raw(self, **params: Any) -> httpx.Response:
        query = {"member_id": self.member_id, **params}
        if self.cursor is not None:
            query["cursor"] = self.cursor
        return self.api.get(f"/v1/groups/{self.group}/records", params=query)

    def fetch(self, **params: Any) -> list[dict[str, Any]] | None:
        """The records of one fetch (the cursor moves on), or None when told to rejoin."""
        r = self.fetch_raw(**params)
        if r.status_code == 409:
            return None
        assert r.status_code == 200, r.text
        reply = r.json()
        self.cursor = reply["cursor"]
        self.generation = reply["generation"]
        records: list[dict[str, Any]] = reply["records"]
        return records

    def commit(self, offsets: dict[tuple[str, int], int]) -> httpx.Response:
        return self.api.post(
            f"/v1/groups/{self.group}/offsets",
            json={
                "member_id": self.member_id,
                "generation": self.generation,
                "offsets": [
                    {"topic": t, "partition": p, "offset": o}
                    for (t, p), o in sorted(offsets.items())
                ],
            },
        )

    def leave(self) -> None:
        r = self.api.delete(f"/v1/groups/{self.group}/members/{self.member_id}")
        assert r.status_code == 204, r.text


def settle(members: list[Member], *, rounds: int = 20) -> int:
    """Heartbeat every member and rejoin those told to, until all agree on one
    generation; returns it."""
    for _ in range(rounds):
        for m in members:
            if m.heartbeat().status_code == 409:
                m.join()
        generations = {m.generation for m in members}
        if len(generations) == 1 and all(m.heartbeat().status_code == 200 for m in members):
            return generations.pop()
    raise AssertionError(f"members did not settle: {[m.generation for m in members]}")


class FetchInThread:
    """One group fetch of a member, on a connection of its own in a thread: a long
    poll the test acts around (a join, a leave, heartbeats) while it waits. Keeps
    the reply and how long it took, timed from just before the request."""

    def __init__(self, member: Member, *, max_wait_ms: int, timeout_s: float = 20) -> None:
        self.reply: httpx.Response | None = None
        self.answered = 0.0  # time.monotonic() when the reply came
        self.elapsed = 0.0
        query: dict[str, Any] = {"member_id": member.member_id, "max_wait_ms": max_wait_ms}
        if member.cursor is not None:
            query["cursor"] = member.cursor
        self._thread = threading.Thread(
            target=self._fetch, args=(member, query, timeout_s), daemon=True
        )

    def _fetch(self, member: Member, query: dict[str, Any], timeout_s: float) -> None:
        began = time.monotonic()
        api = member.api
        with httpx.Client(
            base_url=str(api.base_url), headers=api.headers, timeout=timeout_s
        ) as own:
            reply = own.get(f"/v1/groups/{member.group}/records", params=query)
        self.answered = time.monotonic()
        self.elapsed = self.answered - began
        self.reply = reply

    def start(self) -> FetchInThread:
        self._thread.start()
        return self

    def join(self, timeout_s: float) -> httpx.Response:
        """The reply, once it came within `timeout_s` (an assertion error if not)."""
        self._thread.join(timeout_s)
        assert self.reply is not None, f"no reply within {timeout_s} s"
        return self.reply

    def wait(self, timeout_s: float) -> bool:
        """Whether the reply came within `timeout_s` (returns as soon as it does)."""
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

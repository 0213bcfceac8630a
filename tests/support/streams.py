"""Clients' side of live streams in tests: real WebSocket and SSE clients, read with deadlines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
from httpx_sse import ServerSentEvent
from websockets.asyncio.client import ClientConnection

Seen = tuple[int, int, Any]  # partition, offset, value


async def frame(ws: ClientConnection, timeout_s: float = 10.0) -> dict[str, Any]:
    """The next server frame, as JSON."""
    raw = await asyncio.wait_for(ws.recv(), timeout_s)
    document: dict[str, Any] = orjson.loads(raw)
    return document


async def ws_records(ws: ClientConnection, count: int, timeout_s: float = 30.0) -> list[Seen]:
    """Records from `records` frames until at least `count` arrived (whole frames)."""
    seen: list[Seen] = []
    async with asyncio.timeout(timeout_s):
        while len(seen) < count:
            document = await frame(ws, timeout_s)
            assert document["type"] == "records", document
            seen += [(r["partition"], r["offset"], r["value"]) for r in document["records"]]
    return seen


async def sse_records(
    events: AsyncIterator[ServerSentEvent], count: int, timeout_s: float = 30.0
) -> tuple[list[Seen], str]:
    """`count` record events, and the id of the last one."""
    seen: list[Seen] = []
    last = ""
    async with asyncio.timeout(timeout_s):
        while len(seen) < count:
            event = await anext(events)
            if event.event != "record":
                continue
            record = orjson.loads(event.data)
            seen.append((record["partition"], record["offset"], record["value"]))
            last = event.id
    return seen, last


def in_order_once(seen: list[Seen]) -> bool:
    """Each partition's offsets consecutive and increasing: nothing repeated or skipped."""
    last: dict[int, int] = {}
    for partition, offset, _value in seen:
        if partition in last and offset != last[partition] + 1:
            return False
        last[partition] = offset
    return True


def positions_after(seen: list[Seen], before: dict[int, int]) -> dict[int, int]:
    out = dict(before)
    for partition, offset, _value in seen:
        out[partition] = offset + 1
    return out


async def produce(
    client: httpx.AsyncClient, topic: str, values: list[Any], *, batch: int = 50, **extra: Any
) -> None:
    for i in range(0, len(values), batch):
        records = [{"value": v, **extra} for v in values[i : i + batch]]
        reply = await client.post(f"/v1/topics/{topic}/records", json={"records": records})
        assert reply.status_code == 200, reply.text

"""`tidegate consume TOPIC`: a topic's records as NDJSON on stdout, so they pipe into jq.

Each line is one record as the API returns it (`partition`, `offset`,
`timestamp`, `key`, `value`, `headers`). `--from` says where each partition
starts: `earliest` (default), `latest`, an offset, or a time (ISO 8601, e.g.
`2026-12-03T10:00:00Z`, or milliseconds since the epoch with `@`:
`@1764756000000`). Without `--follow` the command reads every partition up to
the end it had when the command started and exits; with `--follow` it
long-polls every partition at once until interrupted. `--partition` reads one.
`--group G` reads as a member of a consumer group instead (consume_group).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import sys
from dataclasses import dataclass
from typing import Any, TextIO

import httpx
import orjson

from gateway.cli.consume_group import consume_group
from gateway.cli.remote import add_target_options, async_client, checked

POLL_WAIT_MS = 10_000
PAGE_RECORDS = 1000


def add_commands(commands: Any) -> None:
    consume = commands.add_parser("consume", help="read a topic's records as NDJSON")
    consume.add_argument("topic")
    consume.add_argument(
        "--from",
        dest="start",
        default="earliest",
        help="earliest, latest, OFFSET, TIME (ISO 8601) or @MILLIS [earliest]",
    )
    consume.add_argument("--follow", action="store_true", help="keep waiting for new records")
    consume.add_argument("--partition", type=int, help="only this partition")
    consume.add_argument("--max-records", type=int, help="stop after this many records")
    consume.add_argument(
        "--group", help="read as a member of this consumer group, committing what it prints"
    )
    add_target_options(consume)


@dataclass(frozen=True, slots=True)
class Start:
    """Where each partition's reading starts, as fetch query parameters."""

    params: dict[str, str]


def parse_start(text: str) -> Start:
    """`earliest`, `latest`, an offset, `@millis` or an ISO 8601 time (naive = UTC)."""
    if text in ("earliest", "latest"):
        return Start({"offset": text})
    if text.isdigit():
        return Start({"offset": text})
    if text.startswith("@") and text[1:].isdigit():
        return Start({"timestamp": text[1:]})
    try:
        when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"--from takes earliest, latest, an offset, @millis or an ISO 8601 time, not {text!r}"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return Start({"timestamp": str(int(when.timestamp() * 1000))})


class Output:
    """NDJSON lines to `out`, counting towards `limit`; `full` once it is reached."""

    def __init__(self, out: TextIO, limit: int | None) -> None:
        self.out = out
        self.limit = limit
        self.written = 0
        self.done = asyncio.Event()

    def write(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            if self.limit is not None and self.written >= self.limit:
                self.done.set()
                return
            self.out.write(orjson.dumps(record).decode() + "\n")
            self.written += 1
        self.out.flush()
        if self.limit is not None and self.written >= self.limit:
            self.done.set()


async def read_partition(
    api: httpx.AsyncClient, topic: str, partition: int, start: Start, follow: bool, out: Output
) -> None:
    path = f"/v1/topics/{topic}/partitions/{partition}/records"
    params = {**start.params, "max_records": str(PAGE_RECORDS)}
    stop_at: int | None = None
    while not out.done.is_set():
        if follow:
            params["max_wait_ms"] = str(POLL_WAIT_MS)
        reply = checked(await api.get(path, params=params)).json()
        out.write(reply["records"])
        if stop_at is None:
            stop_at = reply["end_offset"]  # the end when reading began
        params = {"offset": str(reply["next_offset"]), "max_records": str(PAGE_RECORDS)}
        if not follow and reply["next_offset"] >= stop_at:
            return


async def consume(args: argparse.Namespace, out: TextIO) -> int:
    start = parse_start(args.start)
    output = Output(out, args.max_records)
    timeout = httpx.Timeout(30.0, read=POLL_WAIT_MS / 1000 + 30.0)
    async with async_client(args, timeout_s=30.0) as api:
        api.timeout = timeout
        topic = checked(await api.get(f"/v1/topics/{args.topic}")).json()
        partitions = [p["partition"] for p in topic["partitions"]]
        if args.partition is not None:
            if args.partition not in partitions:
                raise ValueError(f"{args.topic} has no partition {args.partition}")
            partitions = [args.partition]
        readers = [
            asyncio.create_task(read_partition(api, args.topic, p, start, args.follow, output))
            for p in partitions
        ]
        limit = asyncio.create_task(_until(output.done))
        try:
            pending = set(readers)
            while pending and not limit.done():
                done, pending = await asyncio.wait(
                    pending | {limit}, return_when=asyncio.FIRST_COMPLETED
                )
                pending.discard(limit)
                for task in done:
                    if task is not limit:
                        task.result()  # a reader's error ends the command
        finally:
            for task in [*readers, limit]:
                task.cancel()
            for task in [*readers, limit]:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
    return 0


async def _until(event: asyncio.Event) -> None:
    await event.wait()


def run(args: argparse.Namespace) -> int:
    try:
        if args.group is not None:
            return consume_group(args, sys.stdout)
        return asyncio.run(consume(args, sys.stdout))
    except KeyboardInterrupt:
        return 0

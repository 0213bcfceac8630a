"""`tidegate produce TOPIC`: records from NDJSON or plain lines, in batches, to a server.

Input is stdin or `--file`. Each line is one record: by default a JSON value
(NDJSON), whose field `--key-field` (a top-level member of an object) gives
the key; with `--lines` the line itself is a string value. Empty lines are
skipped. Records go in batches of `--batch-size` (one request each, all or
nothing on the server); each batch carries an `Idempotency-Key`, so the
retries after a 429/503 (waiting what `Retry-After` says) or a lost reply
append it once.

A record is rejected either here (a line that is not JSON, a key field
missing) or by the server (a 4xx naming the record); every rejection is
reported on stderr with its line number, the other batches still go, and the
command exits 1. A progress bar with records/s is drawn on stderr when it is
a terminal.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

import httpx
from rich.console import Console
from rich.progress import Progress, ProgressColumn, SpinnerColumn, Task, TextColumn
from rich.text import Text

from gateway.cli.admin import RemoteError
from gateway.cli.remote import add_target_options, client, problem_of

DEFAULT_BATCH = 500
RETRIES = 5
RETRIED_STATUSES = frozenset({429, 503})


def add_commands(commands: Any) -> None:
    produce = commands.add_parser(
        "produce", help="produce NDJSON or lines from stdin or a file to a topic"
    )
    produce.add_argument("topic")
    produce.add_argument("--file", type=argparse.FileType("r"), help="read this, not stdin")
    produce.add_argument("--lines", action="store_true", help="each line is a string value")
    produce.add_argument("--key-field", help="the key is this member of each JSON object")
    produce.add_argument(
        "--batch-size", type=int, default=DEFAULT_BATCH, help=f"records a request [{DEFAULT_BATCH}]"
    )
    add_target_options(produce)


@dataclass(frozen=True, slots=True)
class Line:
    number: int  # 1-based, in the input
    record: dict[str, Any]


@dataclass
class Outcome:
    """What a run did: records appended, and each rejected line with why."""

    appended: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


def records_of(
    lines: Iterable[str], *, as_lines: bool, key_field: str | None, outcome: Outcome
) -> Iterator[Line]:
    """The record of each input line; lines that cannot be one go to `outcome.rejected`."""
    for number, raw in enumerate(lines, start=1):
        text = raw.rstrip("\r\n")
        if not text.strip():
            continue
        if as_lines:
            yield Line(number, {"value": text})
            continue
        try:
            value = json.loads(text)
        except ValueError as exc:
            outcome.rejected.append((number, f"not JSON: {exc}"))
            continue
        record: dict[str, Any] = {"value": value}
        if key_field is not None:
            if not isinstance(value, dict) or key_field not in value:
                outcome.rejected.append((number, f"no key field {key_field!r}"))
                continue
            key = value[key_field]
            record["key"] = key if isinstance(key, str) else json.dumps(key)
        yield Line(number, record)


def batches(lines: Iterable[Line], size: int) -> Iterator[list[Line]]:
    batch: list[Line] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def send(api: httpx.Client, topic: str, batch: list[Line], key: str, outcome: Outcome) -> None:
    """One batch, retried after 429/503 and lost replies; rejections go to `outcome`."""
    body = {"records": [line.record for line in batch]}
    headers = {"Idempotency-Key": key}
    for attempt in range(RETRIES + 1):
        try:
            response = api.post(f"/v1/topics/{topic}/records", json=body, headers=headers)
        except httpx.TransportError:
            if attempt == RETRIES:
                raise
            time.sleep(min(2.0, 0.1 * 2**attempt))
            continue
        if response.status_code in RETRIED_STATUSES and attempt < RETRIES:
            time.sleep(min(30.0, float(response.headers.get("retry-after", "1"))))
            continue
        if response.status_code < 400:
            outcome.appended += len(batch)
            return
        reject(batch, response, outcome)
        return


def reject(batch: list[Line], response: httpx.Response, outcome: Outcome) -> None:
    """A refused batch: the records the problem names, or every line if it names none."""
    problem = problem_of(response)
    detail = f"{response.status_code} {problem.get('detail', '')}".strip()
    if response.status_code in (401, 403, 404):  # every batch would be: stop here
        raise RemoteError(detail)
    named = [e for e in problem.get("errors", []) if isinstance(e.get("record"), int)]
    if not named:
        for line in batch:
            outcome.rejected.append((line.number, detail))
        return
    flagged = set()
    for error in named:
        index = error["record"]
        if 0 <= index < len(batch):
            flagged.add(index)
            outcome.rejected.append((batch[index].number, error.get("message", detail)))
    for index, line in enumerate(batch):
        if index not in flagged:
            outcome.rejected.append((line.number, "not appended: its batch had rejected records"))


class RecordsPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} records/s" if speed else "", style="progress.data.speed")


def run(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise ValueError("--batch-size must be at least 1")
    source: TextIO = args.file or sys.stdin
    try:
        return _produce(args, source, sys.stderr)
    finally:
        if args.file is not None:
            args.file.close()


def _produce(args: argparse.Namespace, source: TextIO, stderr: TextIO) -> int:
    outcome = Outcome()
    lines = records_of(source, as_lines=args.lines, key_field=args.key_field, outcome=outcome)
    run_id = uuid.uuid4().hex
    console = Console(file=stderr)
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.completed:,.0f} records"),
        RecordsPerSecond(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    with client(args) as api, progress:
        task = progress.add_task(args.topic, total=None)
        for number, batch in enumerate(batches(lines, args.batch_size)):
            send(api, args.topic, batch, f"cli-{run_id}-{number}", outcome)
            progress.update(task, completed=outcome.appended)
    for line, why in sorted(outcome.rejected):
        print(f"tidegate: line {line} rejected: {why}", file=stderr)
    summary = {"appended": outcome.appended, "rejected": len(outcome.rejected)}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{outcome.appended} records appended, {len(outcome.rejected)} rejected", file=stderr)
    return 1 if outcome.rejected else 0

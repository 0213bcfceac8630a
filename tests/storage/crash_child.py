"""A producer process for the crash tests: appends and reports each acknowledgement.

Run as `python -m tests.storage.crash_child DATA_DIR [--crash-point NAME:N]
[--partitions K] [--create-topic NAME]`. It opens the embedded log (fsync
durability, small segments so rolls happen often), and several concurrent
appenders write batches of unique values. After each acknowledged append it
prints `opening` before
recovery, `ready` once open, and `ack <partition> <base_offset> <count> <sha256 of the values>` and
flushes, so the parent knows exactly what was promised before it kills us.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import random
import sys

from storage.embedded.engine import EmbeddedLogStore
from storage.embedded.options import EngineOptions
from storage.errors import TopicExists
from storage.records import Durability, NewRecord, TopicConfig

TOPIC = "crash"
CONFIG = TopicConfig(segment_bytes=64 * 1024, durability=Durability.FSYNC)


def values_digest(values: list[bytes]) -> str:
    h = hashlib.sha256()
    for v in values:
        h.update(len(v).to_bytes(4, "big"))
        h.update(v)
    return h.hexdigest()


async def appender(store: EmbeddedLogStore, worker: int, partitions: int, tag: str) -> None:
    rng = random.Random(f"{tag}-{worker}")
    seq = 0
    while True:
        partition = rng.randrange(partitions)
        values = []
        for _ in range(rng.randint(1, 50)):
            seq += 1
            values.append(f"{tag}-{worker}-{seq}-".encode() + os.urandom(rng.randint(0, 200)))
        result = await store.append(TOPIC, partition, [NewRecord(v, key=b"k") for v in values])
        line = f"ack {partition} {result.base_offset} {result.count} {values_digest(values)}\n"
        sys.stdout.write(line)
        sys.stdout.flush()


async def main(args: argparse.Namespace) -> None:
    options = EngineOptions(shards=2, crash_point=args.crash_point)
    sys.stdout.write("opening\n")  # recovery starts: a kill from here on may interrupt it
    sys.stdout.flush()
    store = await EmbeddedLogStore.open(args.data_dir, options=options)
    with contextlib.suppress(TopicExists):
        await store.create_topic(TOPIC, args.partitions, CONFIG)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    tag = os.urandom(4).hex()
    workers = [
        asyncio.create_task(appender(store, w, args.partitions, tag)) for w in range(args.workers)
    ]
    if args.create_topic:
        await asyncio.sleep(0.05)
        await store.create_topic(args.create_topic, 2, CONFIG)
        sys.stdout.write(f"created {args.create_topic}\n")
        sys.stdout.flush()
    await asyncio.gather(*workers)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("data_dir")
    parser.add_argument("--crash-point")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--create-topic")
    asyncio.run(main(parser.parse_args()))

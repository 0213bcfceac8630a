"""A process for the catalog crash tests: one topic change, dying at a crash point.

Run as `python -m tests.storage.catalog_child DATA_DIR ACTION NAME --crash-point P:N`.
ACTION is `fill-and-delete` (create NAME with records, then delete it),
`create` (create NAME) or `open` (only open the store, e.g. to migrate). It
prints `done` if the crash point was never reached.
"""

from __future__ import annotations

import argparse
import asyncio

from storage.embedded.engine import EmbeddedLogStore
from storage.embedded.options import EngineOptions
from storage.records import Durability, NewRecord, TopicConfig

CONFIG = TopicConfig(durability=Durability.FSYNC)


async def main(args: argparse.Namespace) -> None:
    options = EngineOptions(shards=1, crash_point=args.crash_point)
    store = await EmbeddedLogStore.open(args.data_dir, options=options)
    if args.action == "fill-and-delete":
        await store.create_topic(args.name, 2, CONFIG)
        for p in range(2):
            await store.append(args.name, p, [NewRecord(b"secret-%d" % i) for i in range(5)])
        await store.delete_topic(args.name)
    elif args.action == "create":
        await store.create_topic(args.name, 2, CONFIG)
    await store.close()
    print("done", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("data_dir")
    parser.add_argument("action", choices=["fill-and-delete", "create", "open"])
    parser.add_argument("name")
    parser.add_argument("--crash-point")
    asyncio.run(main(parser.parse_args()))

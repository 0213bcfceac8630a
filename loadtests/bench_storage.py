"""Storage engine benchmark: the embedded log against the disk it runs on.

Run with `make bench-storage` (`python -m loadtests.bench_storage`). First the
disk's own ceiling is measured on the same filesystem (raw sequential write
MB/s, fdatasync/s), then the engine's appends with 16 concurrent appenders
for each value size, batch size, partition count and durability, and its read
(decode) rate. Figures are printed beside ratios against the disk's numbers
from the same run, because shared machines are noisy. Every loop is bounded
in time and count.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from storage.embedded.engine import EmbeddedLogStore
from storage.embedded.options import EngineOptions
from storage.records import Durability, NewRecord, TopicConfig

APPENDERS = 16
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class DiskBaseline:
    write_mb_s: float
    fdatasync_per_s: float


def measure_disk(directory: Path, *, seconds: float = 2.0) -> DiskBaseline:
    """Raw sequential write (64 MiB in 1 MiB writes + fdatasync) and 4 KiB write+fdatasync/s."""
    path = directory / "raw.bin"
    chunk = os.urandom(1 << 20)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        start = time.perf_counter()
        for _ in range(64):
            os.write(fd, chunk)
        os.fdatasync(fd)
        write_mb_s = 64 / (time.perf_counter() - start)
    finally:
        os.close(fd)
    small = os.urandom(4096)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        syncs = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds and syncs < 200_000:
            os.write(fd, small)
            os.fdatasync(fd)
            syncs += 1
        rate = syncs / (time.perf_counter() - start)
    finally:
        os.close(fd)
        path.unlink()
    return DiskBaseline(write_mb_s, rate)


@dataclass
class AppendFigures:
    appends_s: float
    records_s: float
    mb_s: float
    p50_ms: float
    p99_ms: float
    read_records_s: float


async def bench_appends(
    directory: Path,
    *,
    value_size: int,
    batch_size: int,
    partitions: int,
    durability: Durability,
    seconds: float,
) -> AppendFigures:
    data_dir = directory / f"v{value_size}-b{batch_size}-p{partitions}-{durability.value}"
    store = await EmbeddedLogStore.open(str(data_dir), options=EngineOptions(shards=4))
    try:
        config = TopicConfig(durability=durability, retention_ms=None)
        await store.create_topic("bench", partitions, config)
        records = [NewRecord(os.urandom(value_size), key=b"key") for _ in range(batch_size)]
        latencies: list[float] = []
        deadline = time.perf_counter() + seconds

        async def appender(worker: int) -> None:
            partition = worker % partitions
            n = 0
            while time.perf_counter() < deadline and n < 1_000_000:
                t0 = time.perf_counter()
                await store.append("bench", partition, records)
                latencies.append(time.perf_counter() - t0)
                n += 1

        start = time.perf_counter()
        await asyncio.gather(*(appender(w) for w in range(APPENDERS)))
        elapsed = time.perf_counter() - start
        appends = len(latencies)
        latencies.sort()
        total_records = appends * batch_size

        read_start = time.perf_counter()
        read = 0
        for p in range(partitions):
            offset = 0
            end = (await store.offsets("bench", p)).end_offset
            while offset < end:
                fetched = await store.read("bench", p, offset, max_records=5000)
                read += len(fetched.records)
                offset = fetched.next_offset
        read_elapsed = time.perf_counter() - read_start
        return AppendFigures(
            appends_s=appends / elapsed,
            records_s=total_records / elapsed,
            mb_s=total_records * value_size / elapsed / 1e6,
            p50_ms=statistics.median(latencies) * 1000,
            p99_ms=latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
            read_records_s=read / read_elapsed if read_elapsed > 0 else 0.0,
        )
    finally:
        await store.close()
        shutil.rmtree(data_dir, ignore_errors=True)


async def main(seconds: float, quick: bool) -> None:
    with tempfile.TemporaryDirectory(dir=ROOT, prefix=".bench-storage-") as tmp:
        directory = Path(tmp)
        disk = measure_disk(directory)
        print(f"machine: {os.cpu_count()} cores; appenders: {APPENDERS}; {seconds:.1f} s per row")
        print(
            f"disk: raw sequential write {disk.write_mb_s:.0f} MB/s, "
            f"{disk.fdatasync_per_s:.0f} fdatasync/s (4 KiB write + fdatasync)\n"
        )
        header = (
            f"{'value':>6} {'batch':>5} {'parts':>5} {'durab':>6} | {'appends/s':>10} "
            f"{'records/s':>10} {'MB/s':>7} {'p50 ms':>7} {'p99 ms':>7} | {'read rec/s':>10} | "
            f"{'appends/fsync':>13} {'MB/s vs raw':>11}"
        )
        print(header)
        print("-" * len(header))
        results: dict[tuple[int, int, int, Durability], AppendFigures] = {}
        sizes = [100] if quick else [100, 1024]
        batches = [100] if quick else [1, 10, 100]
        for value_size in sizes:
            for batch_size in batches:
                for partitions in (1, 8):
                    for durability in (Durability.FSYNC, Durability.NONE):
                        f = await bench_appends(
                            directory,
                            value_size=value_size,
                            batch_size=batch_size,
                            partitions=partitions,
                            durability=durability,
                            seconds=seconds,
                        )
                        results[(value_size, batch_size, partitions, durability)] = f
                        per_sync = f.appends_s / disk.fdatasync_per_s
                        print(
                            f"{value_size:>6} {batch_size:>5} {partitions:>5} "
                            f"{durability.value:>6} | {f.appends_s:>10.0f} {f.records_s:>10.0f} "
                            f"{f.mb_s:>7.1f} {f.p50_ms:>7.2f} {f.p99_ms:>7.2f} | "
                            f"{f.read_records_s:>10.0f} | {per_sync:>13.2f} "
                            f"{f.mb_s / disk.write_mb_s:>11.2f}",
                            flush=True,
                        )
        print(
            "\nappends/fsync = appends/s divided by the disk's fdatasync/s: above 1 means "
            "group commit shares one sync between appenders."
        )
        print_aims(results, disk)


def print_aims(
    results: dict[tuple[int, int, int, Durability], AppendFigures], disk: DiskBaseline
) -> None:
    """The headline shape (16 appenders x 100-record batches x 100 B, fsync) against the aims."""
    ceiling = disk.fdatasync_per_s * 100  # records/s if every 100-record append needed its own sync
    print("\naims (16 appenders, 100-record batches of 100 B, durability fsync):")
    for partitions in (1, 8):
        f = results.get((100, 100, partitions, Durability.FSYNC))
        if f is None:
            continue
        print(
            f"  {partitions} partition(s): {f.records_s:,.0f} records/s "
            f"[aim >= 300,000: {'met' if f.records_s >= 300_000 else 'MISSED'}]; "
            f"{f.records_s / ceiling:.2f}x the one-sync-per-append ceiling of {ceiling:,.0f} "
            f"[aim >= 0.5: {'met' if f.records_s >= ceiling / 2 else 'MISSED'}]; "
            f"reads {f.read_records_s:,.0f} records/s "
            f"[aim >= 500,000: {'met' if f.read_records_s >= 500_000 else 'MISSED'}]"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.5, help="duration of each row")
    parser.add_argument("--quick", action="store_true", help="only 100-byte, 100-record rows")
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.quick))

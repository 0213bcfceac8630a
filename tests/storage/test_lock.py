"""One engine per data directory: a second open is refused, naming the holder, and
touches nothing; the lock goes with a clean close and with a crash."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from storage.embedded.engine import CLEAN_SHUTDOWN_MARKER, EmbeddedLogStore
from storage.embedded.lock import LOCK_FILE
from storage.embedded.options import EngineOptions
from storage.errors import DataDirInUse
from storage.records import NewRecord, TopicConfig

OPTIONS = EngineOptions(shards=1)


@pytest.mark.anyio
async def test_a_second_open_is_refused_naming_the_holder_and_writes_nothing(
    tmp_path: Path,
) -> None:
    first = await EmbeddedLogStore.open(str(tmp_path), options=OPTIONS)
    await first.create_topic("t", 1, TopicConfig())
    await first.append("t", 0, [NewRecord(b"a")])
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(DataDirInUse) as refused:
        await EmbeddedLogStore.open(str(tmp_path), options=OPTIONS)
    assert refused.value.pid == os.getpid()
    assert f"in use by process {os.getpid()}" in str(refused.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert not (tmp_path / CLEAN_SHUTDOWN_MARKER).exists()
    await first.append("t", 0, [NewRecord(b"b")])  # the holder is unaffected
    await first.close()
    assert (tmp_path / LOCK_FILE).read_text() == ""  # no stale PID once released
    again = await EmbeddedLogStore.open(str(tmp_path), options=OPTIONS)
    assert again.recovery.clean_shutdown
    await again.close()


def test_a_lock_held_by_another_process_names_it_and_dies_with_it(tmp_path: Path) -> None:
    with subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import asyncio, sys\n"
            "from storage.embedded.engine import EmbeddedLogStore\n"
            "async def main():\n"
            f"    await EmbeddedLogStore.open({str(tmp_path)!r})\n"
            "    print('open', flush=True)\n"
            "    sys.stdin.read()\n"
            "asyncio.run(main())\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline() == "open\n"
            with pytest.raises(DataDirInUse) as refused:
                asyncio.run(open_and_close(tmp_path))
            assert refused.value.pid == holder.pid
        finally:
            holder.kill()  # a crash: the kernel drops the lock
            holder.wait(10)
    assert not asyncio.run(open_and_close(tmp_path))  # a crash is followed by a recovery scan


async def open_and_close(data_dir: Path) -> bool:
    """Open and close the engine on `data_dir`; whether it found a clean shutdown."""
    store = await EmbeddedLogStore.open(str(data_dir), options=OPTIONS)
    await store.close()
    return store.recovery.clean_shutdown

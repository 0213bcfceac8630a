"""The file seam's durable write: one pwritev2(RWF_DSYNC), or exactly the seam's own calls."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from storage.embedded.fileio import FileIO


def appendable(tmp_path: Path, fio: FileIO) -> int:
    fd = fio.open(str(tmp_path / "log"), os.O_RDWR | os.O_CREAT | os.O_APPEND)
    fio.write_all(fd, b"head|")
    return fd


@pytest.mark.skipif(not hasattr(os, "RWF_DSYNC"), reason="pwritev2 flags are Linux's")
def test_a_durable_write_is_one_dsync_write_at_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fio = FileIO()
    fd = appendable(tmp_path, fio)
    calls: list[tuple[int, int]] = []
    real = os.pwritev

    def pwritev(fd: int, buffers: Any, offset: int, flags: int = 0) -> int:
        calls.append((offset, flags))
        n: int = real(fd, [bytes(buffers[0])[:3]], offset, flags)  # short: the loop goes on
        return n

    monkeypatch.setattr(os, "pwritev", pwritev)
    monkeypatch.setattr(FileIO, "fdatasync", FileIO.fdatasync)  # still this class's own
    fio.write_all_durable(fd, b"batch-bytes")
    fio.close(fd)
    assert (tmp_path / "log").read_bytes() == b"head|batch-bytes"
    assert calls == [(-1, os.RWF_DSYNC)] * 4  # 11 bytes, 3 at a time


def test_a_seam_that_changes_write_or_sync_gets_exactly_its_own_calls(tmp_path: Path) -> None:
    """Fault injection sees a durable write as its write, then its fdatasync."""
    seen: list[str] = []

    class Recording(FileIO):
        def write(self, fd: int, data: bytes | memoryview) -> int:
            seen.append(f"write {bytes(data)!r}")
            return super().write(fd, data)

        def fdatasync(self, fd: int) -> None:
            seen.append("fdatasync")
            super().fdatasync(fd)

    fio = Recording()
    fd = appendable(tmp_path, fio)
    seen.clear()
    fio.write_all_durable(fd, b"abc")
    fio.close(fd)
    assert seen == ["write b'abc'", "fdatasync"]
    assert (tmp_path / "log").read_bytes() == b"head|abc"


def test_a_failed_sync_inside_a_durable_write_is_an_oserror(tmp_path: Path) -> None:
    class FailingSync(FileIO):
        def fdatasync(self, fd: int) -> None:
            raise OSError(5, "simulated EIO")

    fio = FailingSync()
    fd = appendable(tmp_path, fio)
    with pytest.raises(OSError, match="EIO"):
        fio.write_all_durable(fd, b"abc")
    fio.close(fd)

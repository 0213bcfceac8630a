"""A real, small file system that fills up: a size-limited tmpfs mounted for one test.

Mounting needs root (CAP_SYS_ADMIN); elsewhere the tests using it are skipped and
the fault-injecting FileIO (tests/storage/faults.py) covers the log's side alone.
`fill` takes every free byte, so the next write of anything (SQLite's WAL
included) fails with ENOSPC as on a full disk; `free` gives the space back.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

BALLAST = "ballast"


@contextlib.contextmanager
def small_filesystem(size: str = "4m") -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    root = Path(tempfile.mkdtemp(prefix="tidegate-smallfs-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(root)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        root.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield root
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)
        root.rmdir()


def fill(root: Path) -> None:
    """Write a ballast file until the file system has no byte left."""
    chunk = b"\0" * 65536
    with open(root / BALLAST, "ab", buffering=0) as f:
        for size in (65536, 4096, 1):
            while True:
                try:
                    f.write(chunk[:size])
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break


def free(root: Path) -> None:
    (root / BALLAST).unlink()

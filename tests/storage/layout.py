"""Where the embedded engine keeps a topic on disk, for tests that read or damage files."""

from __future__ import annotations

import json
from pathlib import Path


def topic_dir(data_dir: Path, name: str) -> Path:
    """The directory of the topic named `name` (directories are named by topic id)."""
    for meta in (data_dir / "topics").glob("*/topic.json"):
        if json.loads(meta.read_text()).get("name") == name:
            return meta.parent
    raise FileNotFoundError(f"no topic {name!r} under {data_dir}")


def partition_dir(data_dir: Path, name: str, partition: int = 0) -> Path:
    return topic_dir(data_dir, name) / str(partition)

"""Topics on disk: one directory per topic holding `topic.json` and a directory per partition.

Layout under the data directory:

    topics/<name>/topic.json      partitions, config, created_ms
    topics/<name>/<p>/            the segments of partition p
    topics/.deleted-<name>-<hex>  a topic being deleted (removed at the next open)

`topic.json` is the commit point of a topic's creation: it is written last,
atomically (temp file, fsync, rename, fsync of the directory), so a crash
leaves either no topic or a whole one. Deletion first renames the directory
away durably, so a crash mid-delete never leaves a half-deleted topic visible.
All calls block; the engine runs them in a worker thread.
"""

from __future__ import annotations

import json
import os
import uuid

from storage.embedded.crashpoints import CrashPoints
from storage.embedded.fileio import FileIO
from storage.records import TopicConfig, TopicInfo

TOPIC_FILE = "topic.json"
DELETED_PREFIX = ".deleted-"


class Catalog:
    """Reads and writes topic definitions under `<data_dir>/topics`."""

    def __init__(self, fio: FileIO, data_dir: str, crash: CrashPoints) -> None:
        self._fio = fio
        self._crash = crash
        self.topics_dir = os.path.join(data_dir, "topics")

    def topic_dir(self, name: str) -> str:
        return os.path.join(self.topics_dir, name)

    def partition_dir(self, name: str, partition: int) -> str:
        return os.path.join(self.topics_dir, name, str(partition))

    def prepare(self) -> None:
        """Create the topics directory and remove leftovers of interrupted creates/deletes."""
        fio = self._fio
        if not fio.exists(self.topics_dir):
            fio.mkdir(self.topics_dir)
            fio.fsync_dir(os.path.dirname(self.topics_dir))
        removed = False
        for name in fio.listdir(self.topics_dir):
            path = os.path.join(self.topics_dir, name)
            if name.startswith(DELETED_PREFIX) or not fio.exists(os.path.join(path, TOPIC_FILE)):
                fio.rmtree(path)
                removed = True
            elif fio.exists(os.path.join(path, TOPIC_FILE + ".tmp")):
                fio.unlink(os.path.join(path, TOPIC_FILE + ".tmp"))
        if removed:
            fio.fsync_dir(self.topics_dir)

    def load(self) -> list[TopicInfo]:
        """Every committed topic, sorted by name."""
        infos = []
        for name in sorted(self._fio.listdir(self.topics_dir)):
            raw = self._fio.read_whole(os.path.join(self.topics_dir, name, TOPIC_FILE))
            data = json.loads(raw)
            infos.append(
                TopicInfo(
                    name=name,
                    partitions=int(data["partitions"]),
                    config=TopicConfig.from_dict(dict(data["config"])),
                    created_ms=int(data["created_ms"]),
                )
            )
        return infos

    def create(self, info: TopicInfo) -> None:
        """Make the topic's directories durable, then commit it by writing topic.json."""
        fio = self._fio
        topic_dir = self.topic_dir(info.name)
        fio.mkdir(topic_dir)
        fio.fsync_dir(self.topics_dir)
        for p in range(info.partitions):
            fio.mkdir(self.partition_dir(info.name, p))
        fio.fsync_dir(topic_dir)
        self.write(info)

    def write(self, info: TopicInfo) -> None:
        """Replace topic.json atomically; a crash leaves the old or the new file."""
        fio = self._fio
        path = os.path.join(self.topic_dir(info.name), TOPIC_FILE)
        data = json.dumps(
            {
                "partitions": info.partitions,
                "config": info.config.to_dict(),
                "created_ms": info.created_ms,
            },
            sort_keys=True,
        ).encode()
        fio.write_atomic(path, data, before_rename=lambda: self._crash.hit("metadata-rename"))

    def delete(self, name: str) -> None:
        """Rename the topic away durably (the deletion point), then remove its files."""
        fio = self._fio
        graveyard = os.path.join(self.topics_dir, f"{DELETED_PREFIX}{name}-{uuid.uuid4().hex}")
        fio.rename(self.topic_dir(name), graveyard)
        fio.fsync_dir(self.topics_dir)
        fio.rmtree(graveyard)

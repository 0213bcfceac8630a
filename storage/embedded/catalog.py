"""Topics on disk: one directory per topic, named by the topic's id, never by its name.

Layout under the data directory:

    topics/<id>/topic.json     id, name, partitions, config, created_ms
    topics/<id>/<p>/           the segments of partition p
    topics/.deleted-<id>       a topic being deleted (removed at the next open)

A topic's id is a random 128-bit hex string chosen when it is created, as
Kafka's topic ids are (KIP-516): it never names another topic, so a topic
created again under a deleted one's name starts empty, and on-disk names stay
32 characters whatever the topic's name (which may be longer than a file name
can be). The name lives only in `topic.json`.

`topic.json` is the commit point of a topic's creation and of a partition
count's growth: it is written last, atomically (temp file, fsync, rename, fsync
of the directory), after every directory and segment it describes exists, so a
crash or a full disk leaves either no topic or a whole one, and nothing of a
failed create holds its name. Deletion first renames the directory away
durably: from that point the topic is gone, also after a crash mid-delete.

Data directories written before topics had ids hold `topics/<name>/` with no
id in `topic.json`; `prepare` gives each an id and moves it (see `_migrate`).
All calls block; the engine runs them in a worker thread.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from storage.embedded.crashpoints import CrashPoints
from storage.embedded.fileio import FileIO
from storage.errors import DiskFull
from storage.records import TopicConfig, TopicInfo

log = logging.getLogger(__name__)

TOPIC_FILE = "topic.json"
DELETED_PREFIX = ".deleted-"
_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
T = TypeVar("T")


def new_topic_id() -> str:
    """A fresh topic id: 32 hex characters, never reused (random, 122 bits)."""
    return uuid.uuid4().hex


def _is_topic_id(name: str) -> bool:
    return len(name) == 32 and all(c in "0123456789abcdef" for c in name)


def no_space(exc: OSError) -> bool:
    return exc.errno in _SPACE_ERRNOS


def space_checked(what: str, fn: Callable[[], T]) -> T:
    """`fn()`, with "no space left" (ENOSPC, EDQUOT) raised as DiskFull."""
    try:
        return fn()
    except OSError as exc:
        if no_space(exc):
            raise DiskFull(f"no space left on the device to {what}") from exc
        raise


class Catalog:
    """Reads and writes topic definitions under `<data_dir>/topics`."""

    def __init__(self, fio: FileIO, data_dir: str, crash: CrashPoints) -> None:
        self._fio = fio
        self._crash = crash
        self.topics_dir = os.path.join(data_dir, "topics")

    def topic_dir(self, topic_id: str) -> str:
        return os.path.join(self.topics_dir, topic_id)

    def partition_dir(self, topic_id: str, partition: int) -> str:
        return os.path.join(self.topics_dir, topic_id, str(partition))

    # -- open ---------------------------------------------------------------------------

    def prepare(self) -> None:
        """Create the topics directory, remove leftovers of interrupted creates and
        deletes, and move topics of the name-keyed layout to their id."""
        fio = self._fio
        if not fio.exists(self.topics_dir):
            fio.mkdir(self.topics_dir)
            fio.fsync_dir(os.path.dirname(self.topics_dir))
        removed = False
        for entry in fio.listdir(self.topics_dir):
            path = os.path.join(self.topics_dir, entry)
            if entry.startswith(DELETED_PREFIX) or not fio.exists(os.path.join(path, TOPIC_FILE)):
                fio.rmtree(path)
                removed = True
                continue
            if fio.exists(os.path.join(path, TOPIC_FILE + ".tmp")):
                fio.unlink(os.path.join(path, TOPIC_FILE + ".tmp"))
            data = self._read(path)
            if data.get("id") != entry:
                self._migrate(entry, data)
        if removed:
            fio.fsync_dir(self.topics_dir)

    def _migrate(self, entry: str, data: dict[str, Any]) -> None:
        """Give a name-keyed topic (`topics/<name>/`) an id and move it to `topics/<id>/`.

        Two steps, each safe to redo: topic.json gains the id and the name (atomic),
        then the directory is renamed to the id. A crash between them leaves a
        topic.json whose id differs from its directory's name, which the next
        open finishes moving.
        """
        topic_id = data.get("id")
        if not isinstance(topic_id, str) or not _is_topic_id(topic_id):
            topic_id = new_topic_id()
            data = {**data, "id": topic_id, "name": data.get("name", entry)}
            self._fio.write_atomic(
                os.path.join(self.topics_dir, entry, TOPIC_FILE), self._encode(data)
            )
        self._crash.hit("topic-migrate")
        self._fio.rename(os.path.join(self.topics_dir, entry), self.topic_dir(topic_id))
        self._fio.fsync_dir(self.topics_dir)
        log.info("topic %r moved to its id %s", data.get("name", entry), topic_id)

    def load(self) -> list[TopicInfo]:
        """Every committed topic, sorted by name (after `prepare`)."""
        infos: dict[str, TopicInfo] = {}
        for entry in self._fio.listdir(self.topics_dir):
            data = self._read(self.topic_dir(entry))
            info = TopicInfo(
                name=str(data["name"]),
                partitions=int(data["partitions"]),
                config=TopicConfig.from_dict(dict(data["config"])),
                created_ms=int(data["created_ms"]),
                topic_id=entry,
            )
            self._drop_extra_partitions(info)
            other = infos.get(info.name)
            if other is not None:
                # Cannot happen through this class (a name is free only once its old
                # directory is durably renamed away); never serve two, keep the newer.
                older, info = sorted((other, info), key=lambda i: i.created_ms)
                log.error("topics %s and %s are both named %r; serving %s only",
                          older.topic_id, info.topic_id, info.name, info.topic_id)  # fmt: skip
            infos[info.name] = info
        return [infos[name] for name in sorted(infos)]

    def _drop_extra_partitions(self, info: TopicInfo) -> None:
        """Remove partition directories past the count: a growth that never committed."""
        topic_dir = self.topic_dir(info.topic_id)
        extra = [
            e for e in self._fio.listdir(topic_dir) if e.isdigit() and int(e) >= info.partitions
        ]
        for entry in extra:
            self._fio.rmtree(os.path.join(topic_dir, entry))
        if extra:
            self._fio.fsync_dir(topic_dir)

    def _read(self, topic_dir: str) -> dict[str, Any]:
        data = json.loads(self._fio.read_whole(os.path.join(topic_dir, TOPIC_FILE)))
        if not isinstance(data, dict):
            raise ValueError(f"{topic_dir}/{TOPIC_FILE} is not a JSON object")
        return data

    # -- create, grow, change -----------------------------------------------------------

    def create(
        self, info: TopicInfo, open_partitions: Callable[[int, int], Sequence[T]]
    ) -> list[T]:
        """Make the topic's directories and partitions, then commit it with topic.json.

        `open_partitions(first, end)` opens partitions first..end-1 once their
        directories exist and returns them. On any failure the topic's directory
        is removed (or left without topic.json, which the next open removes):
        nothing of it survives, and its name is free. No space left raises DiskFull.
        """
        fio = self._fio
        topic_dir = self.topic_dir(info.topic_id)

        def build() -> list[T]:
            fio.mkdir(topic_dir)
            for p in range(info.partitions):
                fio.mkdir(self.partition_dir(info.topic_id, p))
            fio.fsync_dir(topic_dir)
            fio.fsync_dir(self.topics_dir)
            return list(open_partitions(0, info.partitions))

        opened: list[T] = []
        try:
            opened = space_checked("create the topic", build)
            space_checked("create the topic", lambda: self.write(info))
        except BaseException:
            self._discard(topic_dir)
            raise
        return opened

    def grow(
        self, info: TopicInfo, old_count: int, open_partitions: Callable[[int, int], Sequence[T]]
    ) -> list[T]:
        """Add partitions old_count..info.partitions-1, then commit the count in topic.json.

        A failure before the commit removes the new partition directories; a crash
        leaves directories past the committed count, which the next open removes.
        """
        fio = self._fio
        topic_dir = self.topic_dir(info.topic_id)
        new = [self.partition_dir(info.topic_id, p) for p in range(old_count, info.partitions)]

        def build() -> list[T]:
            for path in new:
                if fio.exists(path):
                    fio.rmtree(path)  # left by an earlier growth that failed
                fio.mkdir(path)
            fio.fsync_dir(topic_dir)
            return list(open_partitions(old_count, info.partitions))

        try:
            opened = space_checked("add partitions", build)
            space_checked("add partitions", lambda: self.write(info))
        except BaseException:
            for path in new:
                self._discard(path)
            raise
        return opened

    def _discard(self, path: str) -> None:
        try:
            if self._fio.exists(path):
                self._fio.rmtree(path)
        except OSError as exc:  # the next open removes what has no topic.json
            log.warning("could not remove %s after a failed change: %s", path, exc)

    @staticmethod
    def _encode(data: dict[str, Any]) -> bytes:
        return json.dumps(data, sort_keys=True).encode()

    def write(self, info: TopicInfo) -> None:
        """Replace topic.json atomically; a crash leaves the old or the new file."""
        path = os.path.join(self.topic_dir(info.topic_id), TOPIC_FILE)
        data = self._encode(
            {
                "id": info.topic_id,
                "name": info.name,
                "partitions": info.partitions,
                "config": info.config.to_dict(),
                "created_ms": info.created_ms,
            }
        )
        self._fio.write_atomic(path, data, before_rename=lambda: self._crash.hit("metadata-rename"))

    def update(self, info: TopicInfo) -> None:
        """`write`, with no space left raised as DiskFull (the old file stays)."""
        space_checked("change the topic", lambda: self.write(info))

    # -- delete -------------------------------------------------------------------------

    def delete(self, topic_id: str) -> None:
        """Rename the topic's directory away durably: the point from which it is deleted."""
        graveyard = os.path.join(self.topics_dir, DELETED_PREFIX + topic_id)

        def rename() -> None:
            self._fio.rename(self.topic_dir(topic_id), graveyard)
            self._fio.fsync_dir(self.topics_dir)

        space_checked("delete the topic", rename)
        self._crash.hit("topic-delete")

    def remove_deleted(self, topic_id: str) -> None:
        """Remove a deleted topic's files; a failure leaves them for the next open."""
        graveyard = os.path.join(self.topics_dir, DELETED_PREFIX + topic_id)
        try:
            self._fio.rmtree(graveyard)
        except OSError as exc:
            log.warning("could not remove deleted topic %s yet: %s", topic_id, exc)

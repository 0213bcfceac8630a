"""Storage's exception hierarchy: one base, subclasses that carry their numbers.

The gateway maps each class to one problem+json type in a single table; nothing
below the gateway knows about HTTP status codes.
"""

from __future__ import annotations


class StorageError(Exception):
    """Base of every error the storage layer raises on purpose."""


class TopicNotFound(StorageError):
    def __init__(self, topic: str) -> None:
        super().__init__(f"topic {topic!r} does not exist")
        self.topic = topic


class TopicExists(StorageError):
    def __init__(self, topic: str) -> None:
        super().__init__(f"topic {topic!r} already exists")
        self.topic = topic


class InvalidTopicName(StorageError):
    def __init__(self, topic: str) -> None:
        super().__init__(f"invalid topic name {topic!r}")
        self.topic = topic


class InvalidConfig(StorageError):
    """A topic config or argument the store cannot honour (e.g. 0 partitions)."""


class PartitionsCannotShrink(InvalidConfig):
    """A topic's partition count can grow, never shrink (records would lose their place)."""

    def __init__(self, topic: str, current: int, requested: int) -> None:
        super().__init__(
            f"topic {topic!r} has {current} partitions; the count can grow, never shrink, "
            f"so not to {requested}"
        )
        self.topic = topic
        self.current = current
        self.requested = requested


class PartitionNotFound(StorageError):
    def __init__(self, topic: str, partition: int, partitions: int) -> None:
        super().__init__(f"topic {topic!r} has partitions 0..{partitions - 1}, not {partition}")
        self.topic = topic
        self.partition = partition
        self.partitions = partitions


class OffsetOutOfRange(StorageError):
    """The requested offset is below the log start or past its end."""

    def __init__(self, partition: int, requested: int, earliest: int, latest: int) -> None:
        super().__init__(
            f"offset {requested} is outside the valid range {earliest}..{latest} "
            f"of partition {partition}"
        )
        self.partition = partition
        self.requested = requested
        self.earliest = earliest
        self.latest = latest


class RecordTooLarge(StorageError):
    def __init__(self, size: int, limit: int, index: int = 0) -> None:
        super().__init__(f"record {index} is {size} bytes; the topic allows {limit}")
        self.size = size
        self.limit = limit
        self.index = index


class CorruptData(StorageError):
    """Stored bytes failed their CRC or structure check; the range is never served."""

    def __init__(self, partition: int, start_offset: int, end_offset: int, reason: str) -> None:
        super().__init__(
            f"partition {partition} offsets {start_offset}..{end_offset - 1} are corrupt: {reason}"
        )
        self.partition = partition
        self.start_offset = start_offset
        self.end_offset = end_offset
        self.reason = reason


class PartitionFenced(StorageError):
    """A failed fsync made the partition read-only until the process restarts.

    Retrying an fsync after a failure can report success for pages the kernel
    already dropped, so the only safe answer is to stop acknowledging writes.
    """

    def __init__(self, topic: str, partition: int, reason: str) -> None:
        super().__init__(f"partition {partition} of {topic!r} is read-only: {reason}")
        self.topic = topic
        self.partition = partition
        self.reason = reason


class DiskFull(StorageError):
    """No space left for an append; reads keep working, appends resume when space returns."""

    retry_after_s: int = 5


class BackendUnavailable(StorageError):
    """The backend cannot be reached (Redis down, store closed); retry later."""

    retry_after_s: int = 1


class StoreClosed(BackendUnavailable):
    """The store is shutting down or closed."""


class DataDirInUse(StorageError):
    """Another process holds the data directory's lock: one server owns a directory."""

    def __init__(self, data_dir: str, pid: int | None) -> None:
        holder = f"process {pid}" if pid is not None else "another process"
        super().__init__(f"data directory {data_dir} is in use by {holder}")
        self.data_dir = data_dir
        self.pid = pid


class SchemaRegistryError(StorageError):
    """Base of the schema registry store's errors (see storage.schemas)."""


class SubjectNotFound(SchemaRegistryError):
    def __init__(self, subject: str) -> None:
        super().__init__(f"subject {subject!r} not found")
        self.subject = subject


class VersionNotFound(SchemaRegistryError):
    def __init__(self, subject: str, version: int | None) -> None:
        shown = "latest" if version is None else str(version)
        super().__init__(f"subject {subject!r} has no version {shown}")
        self.subject = subject
        self.version = version


class SchemaNotFound(SchemaRegistryError):
    def __init__(self, schema_id: int) -> None:
        super().__init__(f"schema {schema_id} not found")
        self.schema_id = schema_id


class SubjectChanged(SchemaRegistryError):
    """A registration checked against one latest version found another: check again."""

    def __init__(self, subject: str, expected: int | None, latest: int | None) -> None:
        super().__init__(
            f"subject {subject!r} changed while registering: latest is {latest}, not {expected}"
        )
        self.subject = subject
        self.expected = expected
        self.latest = latest


class SubjectSoftDeleted(SchemaRegistryError):
    def __init__(self, subject: str) -> None:
        super().__init__(
            f"subject {subject!r} was soft deleted; set permanent=true to delete it permanently"
        )
        self.subject = subject


class SubjectNotSoftDeleted(SchemaRegistryError):
    def __init__(self, subject: str) -> None:
        super().__init__(
            f"subject {subject!r} was not deleted first before being permanently deleted"
        )
        self.subject = subject


class VersionSoftDeleted(SchemaRegistryError):
    def __init__(self, subject: str, version: int) -> None:
        super().__init__(
            f"subject {subject!r} version {version} was soft deleted; "
            "set permanent=true to delete it permanently"
        )
        self.subject = subject
        self.version = version


class VersionNotSoftDeleted(SchemaRegistryError):
    def __init__(self, subject: str, version: int) -> None:
        super().__init__(
            f"subject {subject!r} version {version} was not deleted first "
            "before being permanently deleted"
        )
        self.subject = subject
        self.version = version


class InvalidCompatibility(SchemaRegistryError):
    def __init__(self, level: str, accepted: tuple[str, ...]) -> None:
        super().__init__(f"invalid compatibility level {level!r}; one of {', '.join(accepted)}")
        self.level = level
        self.accepted = accepted


class GroupNotFound(StorageError):
    """No consumer group of that name is stored."""

    def __init__(self, group: str) -> None:
        super().__init__(f"consumer group {group!r} does not exist")
        self.group = group


class VersionConflict(StorageError):
    """A compare-and-set lost: the group changed since the caller read it (or exists)."""

    def __init__(self, group: str, expected: int, actual: int) -> None:
        super().__init__(
            f"consumer group {group!r} is at version {actual}, not the expected {expected}"
        )
        self.group = group
        self.expected = expected
        self.actual = actual


class MemberFenced(StorageError):
    """A write by a member that is not in the group's current generation: refused whole."""

    def __init__(self, group: str, member_id: str, generation: int, current: int) -> None:
        super().__init__(
            f"member {member_id!r} of generation {generation} is fenced: consumer group "
            f"{group!r} is at generation {current}"
        )
        self.group = group
        self.member_id = member_id
        self.generation = generation
        self.current = current

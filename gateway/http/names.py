"""Topic names as clients see them, and how they map to the tenant-namespaced storage name.

A client names a topic `orders`; storage holds it as `<tenant>~orders`. `~` may
appear in neither part, so no client-chosen name can reach another tenant's
topics, and no name can leave the data directory ("." and ".." are refused).
"""

from __future__ import annotations

import re

from gateway.http.problems import GatewayError, ProblemType

TOPIC_NAME_PATTERN = r"^[A-Za-z0-9._-]{1,249}$"
TOPIC_NAME = re.compile(TOPIC_NAME_PATTERN)
SEPARATOR = "~"


def is_valid_topic_name(name: str) -> bool:
    """True for `^[A-Za-z0-9._-]{1,249}$` except "." and ".." (Kafka's rule)."""
    # fullmatch: with match, `$` also matches before a final newline ("orders\n").
    return bool(TOPIC_NAME.fullmatch(name)) and name not in (".", "..")


def storage_name(tenant: str, topic: str) -> str:
    """The storage-level name of a tenant's topic."""
    return f"{tenant}{SEPARATOR}{topic}"


def tenant_prefix(tenant: str) -> str:
    """The prefix every storage name of `tenant` starts with."""
    return f"{tenant}{SEPARATOR}"


def client_name(tenant: str, stored: str) -> str:
    """Inverse of `storage_name` for a name known to belong to `tenant`."""
    prefix = tenant_prefix(tenant)
    if not stored.startswith(prefix):
        raise ValueError(f"{stored!r} does not belong to tenant {tenant!r}")
    return stored[len(prefix) :]


def checked_topic_name(name: str) -> str:
    """`name` if valid, else 400 `invalid-name` saying what is allowed."""
    if not is_valid_topic_name(name):
        raise GatewayError(
            ProblemType.INVALID_NAME,
            "a topic name is 1 to 249 of A-Z a-z 0-9 . _ - and not '.' or '..'",
            name=name[:300],
        )
    return name

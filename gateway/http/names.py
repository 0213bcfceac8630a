"""Topic names as clients see them, and how they map to the tenant-namespaced storage name.

A client names a topic `orders`; storage holds it as `<namespace>~orders`, where
the namespace is the tenant's immutable id (`Principal.namespace`), never reused:
a tenant created later under a deleted one's name has another namespace, so it
cannot see the old topics even before they are purged. `~` may appear in
neither part, so no client-chosen name can reach another tenant's topics.
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


def storage_name(namespace: str, topic: str) -> str:
    """The storage-level name of a topic of the tenant whose id is `namespace`."""
    if not namespace:
        raise ValueError("a storage name needs the tenant's namespace")
    return f"{namespace}{SEPARATOR}{topic}"


def tenant_prefix(namespace: str) -> str:
    """The prefix every storage name of the tenant `namespace` starts with."""
    if not namespace:
        raise ValueError("a storage prefix needs the tenant's namespace")
    return f"{namespace}{SEPARATOR}"


def client_name(namespace: str, stored: str) -> str:
    """Inverse of `storage_name` for a name known to belong to `namespace`."""
    prefix = tenant_prefix(namespace)
    if not stored.startswith(prefix):
        raise ValueError(f"{stored!r} does not belong to namespace {namespace!r}")
    return stored[len(prefix) :]


_KNOWN_GOOD: set[str] = set()
_KNOWN_GOOD_MAX = 10_000  # names remembered as valid (then forgotten all at once)


def checked_name(name: str, kind: str) -> str:
    """`name` if valid by the topic-name rule (topics and groups share it), else 400
    `invalid-name` saying what a `kind` name allows. Names that passed are
    remembered (a bounded set): every data request checks one, and clients name
    the same few topics and groups over and over."""
    if name in _KNOWN_GOOD:
        return name
    if not is_valid_topic_name(name):
        raise GatewayError(
            ProblemType.INVALID_NAME,
            f"a {kind} name is 1 to 249 of A-Z a-z 0-9 . _ - and not '.' or '..'",
            name=name[:300],
        )
    if len(_KNOWN_GOOD) >= _KNOWN_GOOD_MAX:
        _KNOWN_GOOD.clear()
    _KNOWN_GOOD.add(name)
    return name


def checked_topic_name(name: str) -> str:
    """`name` if it is a valid topic name, else 400 `invalid-name`."""
    return checked_name(name, "topic")

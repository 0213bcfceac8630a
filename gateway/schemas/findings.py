"""What a compatibility check finds: a place in the reader schema and what breaks there."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Finding:
    """One incompatibility: a JSON pointer into the reader schema and a message."""

    pointer: str
    message: str


def child(pointer: str, *parts: str | int) -> str:
    """`pointer` extended by `parts`, escaped as RFC 6901 says."""
    escaped = (str(p).replace("~", "~0").replace("/", "~1") for p in parts)
    return pointer + "".join("/" + p for p in escaped)

"""Compatibility modes: which earlier versions a new schema is checked against, which way.

Every check is one primitive per format, `reads(reader, writer)`: can a consumer
holding `reader` take every value written with `writer`? It answers the list of
incompatibilities found, each with a JSON pointer into the reader schema and a
message naming what breaks (`avro_compat.reads`, `json_compat.reads`). The modes
then say which pairs to check:

| mode | checked |
|---|---|
| NONE | nothing |
| BACKWARD | the new schema reads the latest version's data |
| FORWARD | the latest version reads the new schema's data |
| FULL | both |
| *_TRANSITIVE | the same against every live version, not only the latest |

Pure functions: documents in, findings out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.schemas import avro_compat, json_compat
from gateway.schemas.findings import Finding
from gateway.schemas.formats import SchemaType

Reads = Callable[[Any, Any], list[Finding]]

_READS: dict[SchemaType, Reads] = {
    SchemaType.AVRO: avro_compat.reads,
    SchemaType.JSON: json_compat.reads,
}


@dataclass(frozen=True, slots=True)
class Incompatibility:
    """One reason a new schema breaks a mode: which version, which direction, where, what."""

    version: int
    direction: str  # "backward": the new schema reads the old one's data; "forward": the reverse
    pointer: str
    message: str

    def describe(self) -> str:
        if self.direction == "backward":
            side = f"the new schema cannot read data written with version {self.version}"
        else:
            side = f"version {self.version} cannot read data written with the new schema"
        at = self.pointer or "/"
        return f"{side}: at {at}: {self.message}"


def directions(mode: str) -> tuple[bool, bool, bool]:
    """(backward, forward, transitive) for a mode."""
    backward = mode.startswith(("BACKWARD", "FULL"))
    forward = mode.startswith(("FORWARD", "FULL"))
    return backward, forward, mode.endswith("_TRANSITIVE")


def incompatibilities(
    mode: str,
    schema_type: SchemaType,
    new: Any,
    existing: Sequence[tuple[int, SchemaType, Any]],
) -> list[Incompatibility]:
    """Why `new` may not follow `existing` (version, type, document; oldest first) under
    `mode`; empty when it may. A version of another schema type cannot be compared and
    counts as incompatible in every mode but NONE."""
    backward, forward, transitive = directions(mode)
    if not (backward or forward) or not existing:
        return []
    checked = existing if transitive else existing[-1:]
    found: list[Incompatibility] = []
    reads = _READS[schema_type]
    for version, old_type, old in checked:
        if old_type is not schema_type:
            found.append(
                Incompatibility(
                    version,
                    "backward",
                    "",
                    f"the schema type changed from {old_type} to {schema_type}",
                )
            )
            continue
        if backward:
            found += [
                Incompatibility(version, "backward", f.pointer, f.message) for f in reads(new, old)
            ]
        if forward:
            found += [
                Incompatibility(version, "forward", f.pointer, f.message) for f in reads(old, new)
            ]
    return found

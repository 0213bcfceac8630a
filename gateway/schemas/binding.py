"""The registry as produce sees it (`gateway.http.value_schemas.ValueSchemas`).

Each call reads the subject's version from the store, so a registration or a
delete applies to the next produce; the compiled validator comes from the
per-process cache (`validators.stored_validator`), so only the first produce
after a registration in this process compiles it, if the registration did not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.schemas.registry import Registry
from gateway.schemas.validators import ValueValidator
from storage.schemas import SchemaStore


@dataclass(frozen=True, slots=True)
class BoundSchema:
    schema_id: int
    version: int
    validator: ValueValidator

    def is_valid(self, value: Any) -> bool:
        return self.validator.is_valid(value)

    def violations(self, value: Any, *, limit: int) -> Sequence[tuple[str, str]]:
        return [(v.pointer, v.message) for v in self.validator.violations(value, limit=limit)]


class RegistryBinding:
    """`ValueSchemas` over a SchemaStore."""

    def __init__(self, store: SchemaStore) -> None:
        self._registry = Registry(store)

    async def bound(self, namespace: str, subject: str, version: int | None) -> BoundSchema:
        held, validator = await self._registry.validator(namespace, subject, version)
        return BoundSchema(held.schema_id, held.version, validator)

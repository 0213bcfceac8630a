"""The registry as produce sees it (`gateway.http.value_schemas.ValueSchemas`).

A schema change takes effect on the next request: every produce asks the store
for its count of changes (`SchemaStore.changes`, an in-memory integer on the
embedded engine, one shared counter on a backend that several gateways share)
and reuses the versions it read while that count stands; once it has moved,
every version is read again. The count is taken before the read it guards, so
a change that lands during the read only makes the next request read again.
The compiled validator comes from the per-process cache
(`validators.stored_validator`), so only the first produce after a
registration in this process compiles it, if the registration did not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.schemas.fast_types import ValueCheck
from gateway.schemas.registry import Registry
from gateway.schemas.validators import ValueValidator
from storage.schemas import SchemaStore

CACHED_BINDINGS = 4096
"""(tenant, subject, version) lookups kept between changes; past it the cache starts
again (they are small: a few numbers and a shared compiled validator each)."""


@dataclass(frozen=True, slots=True)
class BoundSchema:
    schema_id: int
    version: int
    validator: ValueValidator

    @property
    def value_check(self) -> ValueCheck | None:
        return self.validator.value_check

    def is_valid(self, value: Any) -> bool:
        return self.validator.is_valid(value)

    def violations(self, value: Any, *, limit: int) -> Sequence[tuple[str, str]]:
        return [(v.pointer, v.message) for v in self.validator.violations(value, limit=limit)]


class RegistryBinding:
    """`ValueSchemas` over a SchemaStore, its reads kept while the store is unchanged."""

    def __init__(self, store: SchemaStore) -> None:
        self._store = store
        self._registry = Registry(store)
        self._seen = -1
        self._bound: dict[tuple[str, str, int | None], BoundSchema] = {}

    async def bound(self, namespace: str, subject: str, version: int | None) -> BoundSchema:
        changes = await self._store.changes()
        if changes != self._seen:
            self._bound = {}
            self._seen = changes
        key = (namespace, subject, version)
        held = self._bound.get(key)
        if held is not None:
            return held
        found, validator = await self._registry.validator(namespace, subject, version)
        held = BoundSchema(found.schema_id, found.version, validator)
        if self._seen == changes:  # not when a change landed meanwhile
            if len(self._bound) >= CACHED_BINDINGS:
                self._bound = {}
            self._bound[key] = held
        return held

"""Who a request acts as: a tenant, what it may do, and on which topics.

A `Principal` comes only from a verified credential (an API key or a JWT); the
tenant is never taken from anything else the client sends. The gateway asks it
`allows(scope)` and `may_use_topic(name)` on every request.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NewType

TenantId = NewType("TenantId", str)


class Scope(StrEnum):
    TOPICS_READ = "topics:read"
    TOPICS_WRITE = "topics:write"
    TOPICS_ADMIN = "topics:admin"
    GROUPS_READ = "groups:read"
    GROUPS_WRITE = "groups:write"
    SCHEMAS_WRITE = "schemas:write"
    ADMIN = "admin"


ALL_TENANT_SCOPES = frozenset(s for s in Scope if s is not Scope.ADMIN)
_ADMIN = Scope.ADMIN.value


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller.

    `topics` holds glob patterns (`orders*`); empty means every topic of the
    tenant. The operator scope `admin` implies every other scope.
    """

    tenant: TenantId
    credential_id: str
    scopes: frozenset[str]
    topics: tuple[str, ...] = ()
    expires_at_ms: int | None = None
    via: str = "key"  # "key" or "jwt"
    # The API key a gateway token was minted from: the token stands only while it does.
    minted_from: str | None = None
    # The tenant's immutable id, under which its data is stored; set by the
    # directory when it verifies the credential (see tenants.store.TenantRecord.uid).
    namespace: str = ""
    # A JWT's `jti` and `iat`: what revoking one token names, and what introspection shows.
    token_id: str | None = None
    issued_at_ms: int | None = None
    attributes: dict[str, str] = field(default_factory=dict, compare=False)

    def allows(self, scope: Scope | str) -> bool:
        # A Scope hashes and compares as its value (StrEnum), so it is looked up as is.
        scopes = self.scopes
        return scope in scopes or _ADMIN in scopes

    def may_use_topic(self, topic: str) -> bool:
        if not self.topics:
            return True
        return any(fnmatch.fnmatchcase(topic, pattern) for pattern in self.topics)

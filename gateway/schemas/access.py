"""Who may use the registry: reads take `topics:read` or `schemas:write`, writes `schemas:write`.

Reading a schema is what every producer and consumer of a schema-bound topic
does (serializers fetch schemas by id), so the scope that reads topics reads
schemas too; a credential that may register schemas may also read them back.
Registering, deleting and changing compatibility need `schemas:write`. Both APIs
(native and Confluent-compatible) ask the same question here.
"""

from __future__ import annotations

from gateway.http.problems import GatewayError, ProblemType
from tenants.principal import Principal, Scope

READ_SCOPES = (Scope.TOPICS_READ, Scope.SCHEMAS_WRITE)


def require_schema_access(principal: Principal, *, write: bool) -> None:
    """403 unless the credential may read (or, with `write`, change) the registry."""
    if write:
        if not principal.allows(Scope.SCHEMAS_WRITE):
            raise GatewayError(
                ProblemType.FORBIDDEN,
                "the credential lacks the scope 'schemas:write'",
                scope=Scope.SCHEMAS_WRITE.value,
            )
        return
    if not any(principal.allows(s) for s in READ_SCOPES):
        raise GatewayError(
            ProblemType.FORBIDDEN,
            "reading schemas needs the scope 'topics:read' or 'schemas:write'",
            scope=Scope.TOPICS_READ.value,
        )

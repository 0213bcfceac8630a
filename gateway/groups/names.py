"""The prelude of every `/v1/groups/...` route: who asks, which group, its storage name.

Group names follow the topic-name rule and are namespaced by the tenant's id
in storage (`<namespace>~<group>`), so another tenant's group of the same
name is a different group, and answers 404 like a missing one.
Scopes: consuming (join, heartbeat, leave, fetch, commit) needs `groups:read`
and `topics:read` plus the credential's topic patterns for every topic it
reads, as Kafka asks READ on the group and the topic; looking (describe,
list, offsets) needs `groups:read`; changing a group from outside (delete,
offset reset) needs `groups:write`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from starlette.requests import Request

from gateway.http.auth import require_scope, require_topic
from gateway.http.names import checked_name, client_name, is_valid_topic_name, storage_name
from gateway.http.problems import GatewayError, ProblemType
from gateway.http.runtime import Runtime
from tenants.principal import Principal, Scope


def checked_group_name(name: str) -> str:
    """`name` if it is a valid group name (the topic-name rule), else 400 `invalid-name`."""
    return checked_name(name, "group")


@dataclass(frozen=True, slots=True)
class GroupRequest:
    principal: Principal
    group: str  # the tenant's name for it
    stored: str  # namespaced

    LOOK: ClassVar[Scope] = Scope.GROUPS_READ
    CHANGE: ClassVar[Scope] = Scope.GROUPS_WRITE

    @classmethod
    async def of(
        cls,
        request: Request,
        runtime: Runtime,
        *,
        scope: Scope = Scope.GROUPS_READ,
        consuming: bool = False,
    ) -> GroupRequest:
        principal = await runtime.principal(request, scope)
        if consuming:
            require_scope(principal, Scope.TOPICS_READ)
        group = checked_group_name(request.path_params["group"])
        return cls(principal, group, storage_name(principal.namespace, group))

    def stored_topic(self, topic: str) -> str:
        """A topic the request names, allowed by the credential, as stored."""
        if not is_valid_topic_name(topic):
            raise GatewayError(ProblemType.INVALID_NAME, f"invalid topic name {topic[:300]!r}")
        require_topic(self.principal, topic)
        return storage_name(self.principal.namespace, topic)

    def require_topic(self, stored: str) -> None:
        require_topic(self.principal, self.client_topic(stored))

    def client_topic(self, stored: str) -> str:
        return client_name(self.principal.namespace, stored)

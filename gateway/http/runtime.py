"""What every request handler needs, whole: the open backend, the tenant directory, the drain.

The lifespan builds one `Runtime` once storage and the tenant directory are
open and publishes it as `app.state.runtime`; until then, and after it has
closed them, `runtime_of(request)` answers 503 with `Retry-After`, so no
handler ever meets a half-open process. Handlers see only the storage
protocols (`LogStore`, `StateStore`), never an engine. What a feature keeps
for itself (partition counters, render caches) lives in that feature, not here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from starlette.requests import HTTPConnection

from gateway.http.auth import authenticate, require_scope, require_topic
from gateway.http.jsonlimits import JsonLimits
from gateway.http.metrics import Metrics
from gateway.http.names import checked_topic_name, storage_name
from gateway.http.problems import GatewayError, ProblemType
from gateway.http.request_ids import TENANT_SCOPE_KEY
from gateway.http.settings import Settings
from gateway.http.tenant_usage import TenantUsage
from gateway.http.value_schemas import ValueSchemas
from storage.backend import LogStore, StateStore
from storage.groups import GroupStore
from storage.schemas import SchemaStore
from tenants.auth_throttle import ClientAuthThrottle
from tenants.directory import TenantDirectory
from tenants.principal import Principal, Scope
from tenants.quotas import QuotaService
from tenants.tokens import TokenSigner

T = TypeVar("T")


class TopicRequest(NamedTuple):
    """A request on one of the caller's topics: who asks, which topic, where it is stored.
    (A tuple: made on every data request, in a third of a frozen dataclass's time.)"""

    principal: Principal
    topic: str  # the tenant's name for it
    stored: str  # the storage name, namespaced by tenant
    log: LogStore
    state: StateStore


@dataclass(eq=False)
class Drain:
    """The process's shutdown: whether it has begun, and the work it must wait for.

    Exists from the app's creation (a signal may arrive before the backend is
    open), so it is apart from the runtime the lifespan builds.
    """

    # Set when shutdown begins: long-polls answer at once, readiness turns false.
    draining: asyncio.Event = field(default_factory=asyncio.Event)
    # Appends that must finish even if their client is gone; awaited on shutdown.
    inflight: set[asyncio.Task[Any]] = field(default_factory=set)
    # Called once when shutdown begins: how a waiting fetch learns of it without a
    # task of its own waiting on `draining`.
    watchers: set[Callable[[], None]] = field(default_factory=set)
    loop: asyncio.AbstractEventLoop | None = None

    @property
    def started(self) -> bool:
        return self.draining.is_set()

    def begin(self) -> None:
        """Start shutting down: wake every long-poll, report not ready."""
        self.draining.set()
        watchers, self.watchers = self.watchers, set()
        for watcher in watchers:
            watcher()

    def request(self) -> None:
        """`begin` from a signal handler or another thread."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.begin)

    async def run_to_completion(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` as a task that a client disconnect cannot cancel.

        The caller may be cancelled (its client left); the task keeps going and
        stays in `inflight` so that shutdown waits for it.
        """
        task = asyncio.ensure_future(coro)
        self.inflight.add(task)
        task.add_done_callback(self.inflight.discard)
        return await asyncio.shield(task)

    async def appending(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await `coro`, an append that hands its one batch to the log before it
        first suspends: a cancelled caller then abandons the reply, never the
        append (the log completes or fails it on its own), so no task of its own
        is needed, which `run_to_completion` spends (about 11 µs a request).

        The calling task stays in `inflight` meanwhile, so shutdown waits for it.
        """
        task = asyncio.current_task()
        if task is None:  # not in a task: nothing can cancel it
            return await coro
        self.inflight.add(task)
        try:
            return await coro
        finally:
            self.inflight.discard(task)

    async def wait_inflight(self, timeout_s: float) -> int:
        """Wait up to `timeout_s` for in-flight appends; returns how many did not finish."""
        pending = set(self.inflight)
        if not pending:
            return 0
        _done, still = await asyncio.wait(pending, timeout=timeout_s)
        return len(still)


@dataclass(frozen=True, eq=False)
class Runtime:
    """The open process: every part present, nothing Optional."""

    settings: Settings
    log: LogStore
    state: StateStore
    groups: GroupStore
    directory: TenantDirectory
    quotas: QuotaService
    signer: TokenSigner
    auth_throttle: ClientAuthThrottle
    json_limits: JsonLimits
    metrics: Metrics
    usage: TenantUsage
    drain: Drain
    schemas: SchemaStore
    value_schemas: ValueSchemas

    @property
    def ready(self) -> bool:
        return not self.drain.started

    @staticmethod
    def now_ms() -> int:
        return time.time_ns() // 1_000_000

    async def principal(
        self, conn: HTTPConnection, scope: Scope | None, *, credential: str | None = None
    ) -> Principal:
        """The caller, verified, within its request rate, holding `scope`; 401/429/403
        otherwise. Every verified request is counted and charged to its tenant, also
        one then refused for a scope it lacks: probing costs what a request costs.
        `credential`: one found elsewhere than the Authorization header (streams)."""
        principal = await authenticate(conn, self.directory, credential)
        tenant = principal.tenant
        conn.scope[TENANT_SCOPE_KEY] = tenant  # for the access log
        self.usage.traffic[tenant].request()
        await self.quotas.admit_request(tenant)
        if scope is not None and not principal.allows(scope):
            require_scope(principal, scope)  # raises the 403
        return principal

    async def charge_request(self, principal: Principal) -> None:
        """Count one request of `principal`'s tenant and charge it to the tenant's
        `requests_per_second` (429 past it): what every verified request costs, also
        one whose credential came another way than `Authorization: Bearer` (the
        OAuth2 endpoints'); `principal` spells the same two lines out, on the hot path."""
        self.usage.traffic[principal.tenant].request()
        await self.quotas.admit_request(principal.tenant)

    async def usage_reader(self, conn: HTTPConnection) -> Principal:
        """The caller of `GET /v1/usage`, verified, within the usage read bound (429).
        Not counted or charged against `requests_per_second`, so a throttled tenant
        can still see why (GitHub's `/rate_limit` does the same)."""
        principal = await authenticate(conn, self.directory)
        conn.scope[TENANT_SCOPE_KEY] = principal.tenant
        await self.quotas.admit_usage_read(principal.tenant)
        return principal

    async def topic_request(
        self, conn: HTTPConnection, scope: Scope, *, credential: str | None = None
    ) -> TopicRequest:
        """The prelude of every `/v1/topics/{topic}/...` route: the caller holding
        `scope`, the path's topic name checked and allowed by the credential's
        topic patterns, and its tenant-namespaced storage name."""
        principal = await self.principal(conn, scope, credential=credential)
        topic = checked_topic_name(conn.path_params["topic"])
        require_topic(principal, topic)
        stored = storage_name(principal.namespace, topic)
        return TopicRequest(principal, topic, stored, self.log, self.state)


def open_runtime(conn: HTTPConnection) -> Runtime | None:
    """The runtime if the lifespan has opened it and not yet closed it, else None.
    (Read by item: `getattr` on Starlette's `State` fails the ordinary lookup before
    its `__getattr__` answers, which made this a microsecond of every request.)"""
    try:
        runtime: Runtime | None = conn.scope["app"].state["runtime"]
    except KeyError:
        return None
    return runtime


def drain_of(conn: HTTPConnection) -> Drain:
    """The app's drain (it exists from the app's creation on)."""
    drain: Drain = conn.app.state.drain
    return drain


DRAINING_HEADERS = {"Retry-After": "1", "Connection": "close"}
"""A reply while draining closes its connection: the client's next request
goes to a new connection (another server, or this one's refusal), never to one
the server is about to close."""


def runtime_of(conn: HTTPConnection) -> Runtime:
    """The open runtime; 503 + Retry-After while starting, and once the drain has
    begun (a request that arrives during the drain is refused, not started)."""
    runtime = open_runtime(conn)
    if runtime is not None and not runtime.drain.started:
        return runtime
    if drain_of(conn).started:
        raise GatewayError(
            ProblemType.SHUTTING_DOWN, "the server is shutting down", headers=DRAINING_HEADERS
        )
    raise GatewayError(
        ProblemType.BACKEND_UNAVAILABLE,
        "the server is not serving requests right now",
        headers={"Retry-After": "1"},
    )

"""What every request handler needs, built once per process and handed down.

The lifespan fills `log`, `state` and `directory` when the backend is open and
clears `ready` when draining starts. Route modules read the runtime through
`runtime_of(request)`; they see only the storage protocols, never an engine.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from starlette.requests import HTTPConnection

from gateway.auth import authenticate, require_scope, require_topic
from gateway.errors import GatewayError, ProblemType
from gateway.idempotency import IdempotencyStore
from gateway.jsonlimits import JsonLimits
from gateway.metrics import Metrics
from gateway.names import checked_topic_name, storage_name
from gateway.partitioner import RoundRobin
from gateway.rendered import RenderedRecords
from gateway.settings import Settings
from gateway.tenant_usage import TenantUsage
from storage.backend import LogStore, StateStore
from tenants.directory import TenantDirectory
from tenants.principal import Principal, Scope
from tenants.quotas import QuotaService
from tenants.tokens import TokenSigner

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TopicRequest:
    """A request on one of the caller's topics: who asks, which topic, where it is stored."""

    principal: Principal
    topic: str  # the tenant's name for it
    stored: str  # the storage name, namespaced by tenant
    log: LogStore
    state: StateStore


@dataclass
class Runtime:
    settings: Settings
    json_limits: JsonLimits
    metrics: Metrics = field(default_factory=Metrics)
    round_robin: RoundRobin = field(default_factory=RoundRobin)
    rendered: RenderedRecords = field(default_factory=lambda: RenderedRecords(0))
    log: LogStore | None = None
    state: StateStore | None = None
    directory: TenantDirectory | None = None
    quotas: QuotaService | None = None
    signer: TokenSigner | None = None
    usage: TenantUsage = field(default_factory=TenantUsage)
    idempotency: IdempotencyStore | None = None
    # Set when shutdown begins: long-polls answer at once, readiness turns false.
    draining: asyncio.Event = field(default_factory=asyncio.Event)
    # Appends that must finish even if their client is gone; drained on shutdown.
    inflight: set[asyncio.Task[Any]] = field(default_factory=set)
    loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        return cls(
            settings=settings,
            json_limits=JsonLimits(
                max_depth=settings.max_json_depth,
                max_items=settings.max_json_items,
                max_string_bytes=settings.max_json_string_bytes,
            ),
            rendered=RenderedRecords(settings.fetch_render_cache_bytes),
        )

    @property
    def ready(self) -> bool:
        return self.log is not None and not self.draining.is_set()

    def storage(self) -> tuple[LogStore, StateStore]:
        """The open log and state store, or 503 while starting or after closing."""
        if self.log is None or self.state is None:
            raise GatewayError(
                ProblemType.SHUTTING_DOWN
                if self.draining.is_set()
                else ProblemType.BACKEND_UNAVAILABLE,
                "the server is not serving requests right now",
                headers={"Retry-After": "1"},
            )
        return self.log, self.state

    def tenant_directory(self) -> TenantDirectory:
        if self.directory is None:
            raise _not_serving()
        return self.directory

    def quota_service(self) -> QuotaService:
        if self.quotas is None:
            raise _not_serving()
        return self.quotas

    @staticmethod
    def now_ms() -> int:
        return time.time_ns() // 1_000_000

    def token_signer(self) -> TokenSigner:
        if self.signer is None:
            raise _not_serving()
        return self.signer

    async def principal(self, conn: HTTPConnection, scope: Scope | None) -> Principal:
        """The caller, verified, holding `scope`, within its request rate; 401/403/429
        otherwise. The rate is charged only once the credential is verified, to its
        tenant."""
        principal = await authenticate(conn, self.tenant_directory())
        if scope is not None:
            require_scope(principal, scope)
        self.usage.traffic[principal.tenant].request()
        await self.quota_service().admit_request(principal.tenant)
        return principal

    async def topic_request(self, conn: HTTPConnection, scope: Scope) -> TopicRequest:
        """The prelude of every `/v1/topics/{topic}/...` route: the caller holding
        `scope`, the path's topic name checked and allowed by the credential's
        topic patterns, and its tenant-namespaced storage name."""
        principal = await self.principal(conn, scope)
        topic = checked_topic_name(conn.path_params["topic"])
        require_topic(principal, topic)
        log, state = self.storage()
        return TopicRequest(principal, topic, storage_name(principal.tenant, topic), log, state)

    def begin_drain(self) -> None:
        """Start shutting down: wake every long-poll, report not ready."""
        self.draining.set()

    def request_drain(self) -> None:
        """`begin_drain` from a signal handler or another thread."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.begin_drain)

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


def _not_serving() -> GatewayError:
    return GatewayError(
        ProblemType.BACKEND_UNAVAILABLE,
        "the server is not serving requests right now",
        headers={"Retry-After": "1"},
    )


def runtime_of(conn: HTTPConnection) -> Runtime:
    runtime: Runtime = conn.app.state.runtime
    return runtime

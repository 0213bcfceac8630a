"""The process lifecycle: open the backend and tenant directory, serve, drain, close.

Start-up opens storage (the one place that calls `storage.open`), opens the
tenant directory in `<data_dir>/tenants.db`, and on the first start creates
tenant `default` with an operator key, printed once with the URL and a curl
example. Only then is the `Runtime` built, whole, and published as
`app.state.runtime`. Shutdown is bounded: draining is announced (readiness
turns false, waiting long-polls answer at once, requests that arrive get 503),
in-flight appends get up to `drain_timeout_s` to finish, the runtime is
withdrawn, then the directory and the log close cleanly (the log last: it
holds the data directory's lock). `tidegate serve` enters this lifespan
itself, after it has bound its port (gateway/cli/serve.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import secrets
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TextIO

import redis.asyncio
from starlette.applications import Starlette

from gateway.admin.tenants import purge_deleted_tenants
from gateway.coordinator.service import GroupService
from gateway.groups.lag_metrics import group_lags
from gateway.http.connlimits import descriptor_limit, segment_file_bound
from gateway.http.jsonlimits import JsonLimits
from gateway.http.metrics import Metrics
from gateway.http.runtime import Drain, Runtime
from gateway.http.settings import Settings
from gateway.http.tenant_usage import TenantUsage
from gateway.schemas.binding import RegistryBinding
from storage.open import StorageConfig, open_backend
from tenants.auth_throttle import ClientAuthThrottle
from tenants.directory import TenantDirectory
from tenants.plans import plans_from_config
from tenants.quotas import QuotaService
from tenants.ratelimit import LocalGcra, RateLimiter, RedisGcra
from tenants.tokens import IssuerConfig, JwtVerifier, TokenSigner

log = logging.getLogger("tidegate")

SECRET_FILE = "secret"  # noqa: S105 (a file name, not a secret)
TENANTS_DB = "tenants.db"
TOKEN_KEYS_FILE = "token-keys.json"  # noqa: S105 (a file name)
REDIS_TIMEOUT_S = 1.0
TOKEN_AUDIENCE = "tidegate"  # noqa: S105 (the `aud` of own tokens)


def storage_config(settings: Settings) -> StorageConfig:
    """What `open_backend` needs of the settings; the bound on open segment files
    derived from the descriptor limit now (raised to the hard limit already when
    `tidegate serve` runs) unless TIDEGATE_MAX_OPEN_FILES sets it."""
    max_open_files = segment_file_bound(
        settings.max_open_files, settings.max_connections, descriptor_limit()
    )
    return StorageConfig(
        kind=settings.storage,
        data_dir=str(settings.data_dir),
        redis_url=settings.redis_url,
        redis_cluster=settings.redis_cluster,
        shards=settings.storage_shards,
        max_open_files=max_open_files,
        idempotency_window_batches=settings.idempotency_window_batches,
        idempotency_window_s=settings.idempotency_ttl_s,
        retention_interval_s=settings.retention_interval_s,
    )


def key_pepper(settings: Settings) -> bytes:
    """TIDEGATE_KEY_PEPPER, else a random secret generated once in <data_dir>/secret (0600)."""
    if settings.key_pepper is not None:
        return settings.key_pepper.get_secret_value().encode()
    path = settings.data_dir / SECRET_FILE
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_hex(32).encode())
        f.flush()
        os.fsync(f.fileno())
    return path.read_bytes().strip()


YOUNG_COLLECTION_AT = 50_000
"""Container objects allocated (net of those freed) between two collections of the
youngest generation, instead of CPython's 700. A request allocates and frees a
few hundred; at 700, a busy gateway ran a young collection every few requests
and promoted in-flight requests' objects into older generations, whose
collections walk them again: keyed produce over 32 partitions spent about a
fifth of its CPU in the collector. Nearly all of those objects are freed by
reference counting, so a larger young generation holds at most this many
objects of cyclic garbage (a few MB) and collects far less often."""


def freeze_startup_heap() -> None:
    """Move everything start-up built out of the garbage collector's sight, and
    collect the young generation far less often (`YOUNG_COLLECTION_AT`).

    The tens of thousands of long-lived objects of imported modules, settings
    and routes are otherwise walked by every full collection, and a busy
    gateway triggers one every few hundred requests (request objects that are
    in flight when a younger collection runs get promoted and count towards
    it): tens of milliseconds each, on the event loop. Frozen objects are never
    collected, so start-up garbage is collected first.
    """
    gc.collect()
    gc.freeze()
    _young, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_AT, older, oldest)


def banner(settings: Settings, key: str | None) -> str:
    """What the first start prints: the operator key (once), the URL, a curl example."""
    url = settings.base_url
    shown = key if key is not None else "$TIDEGATE_BOOTSTRAP_KEY"
    lines = [
        "",
        "Tidegate is ready for its first use.",
        f"  URL:          {url}",
        f"  Console:      {url}/console/",
    ]
    if key is not None:
        lines.append(f"  Operator key: {key}")
        lines.append("  (shown only this once; store it now)")
    else:
        lines.append("  Operator key: the value of TIDEGATE_BOOTSTRAP_KEY")
    lines += [
        "",
        "Try it:",
        f"  curl -s -X POST {url}/v1/topics -H 'Authorization: Bearer {shown}' \\",
        '       -H \'Content-Type: application/json\' -d \'{"name": "hello", "partitions": 1}\'',
        f"  curl -s -X POST {url}/v1/topics/hello/records -H 'Authorization: Bearer {shown}' \\",
        '       -H \'Content-Type: application/json\' -d \'{"records": [{"value": {"hi": 1}}]}\'',
        f"  curl -s '{url}/v1/topics/hello/partitions/0/records?offset=earliest' \\",
        f"       -H 'Authorization: Bearer {shown}'",
        "",
    ]
    return "\n".join(lines)


def token_signer(settings: Settings) -> TokenSigner:
    """The gateway's signing keys in <data_dir>/token-keys.json; a retired key stays
    published as long as a token it signed may still be valid."""
    return TokenSigner.load_or_create(
        Path(settings.data_dir) / TOKEN_KEYS_FILE,
        issuer=settings.token_issuer,
        audience=TOKEN_AUDIENCE,
        rotate_after_s=settings.token_key_rotate_s,
        keep_s=settings.token_max_ttl_s + 120,
    )


def token_verifier(settings: Settings, signer: TokenSigner) -> JwtVerifier:
    issuers = [
        IssuerConfig(
            issuer=i.issuer,
            jwks_url=i.jwks_url,
            audience=i.audience,
            tenant_claim=i.tenant_claim,
            scope_claim=i.scope_claim,
            algorithms=tuple(i.algorithms),
            jwks=i.jwks,
            require_at_jwt=i.require_at_jwt,
        )
        for i in settings.oauth_issuers
    ]
    return JwtVerifier(issuers, signer=signer)


def rate_limiter(settings: Settings) -> tuple[RateLimiter, Any]:
    """The limiter and the Redis client to close (None for the in-process one)."""
    use_redis = settings.rate_limiter == "redis" or (
        settings.rate_limiter == "auto" and settings.redis_url is not None
    )
    if not use_redis:
        return LocalGcra(), None
    if settings.redis_url is None:
        raise ValueError("TIDEGATE_RATE_LIMITER=redis needs TIDEGATE_REDIS_URL")
    client: Any
    # Bounded waits: a Redis that does not answer must cost a request a second, not hang it.
    if settings.redis_cluster:
        client = redis.asyncio.RedisCluster.from_url(
            settings.redis_url,
            socket_timeout=REDIS_TIMEOUT_S,
            socket_connect_timeout=REDIS_TIMEOUT_S,
        )
    else:
        client = redis.asyncio.Redis.from_url(
            settings.redis_url,
            socket_timeout=REDIS_TIMEOUT_S,
            socket_connect_timeout=REDIS_TIMEOUT_S,
        )
    return RedisGcra(client), client


def json_limits(settings: Settings) -> JsonLimits:
    return JsonLimits(
        max_depth=settings.max_json_depth,
        max_items=settings.max_json_items,
        max_string_bytes=settings.max_json_string_bytes,
    )


def lifespan_for(
    settings: Settings,
    *,
    drain: Drain,
    metrics: Metrics,
    out: TextIO | None = None,
    freeze_heap: bool = False,
) -> Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]]:
    """The Starlette lifespan of one process; `freeze_heap` when the process does
    nothing else (`freeze_startup_heap`), never in a test run."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        drain.loop = asyncio.get_running_loop()
        config = storage_config(settings)
        if config.kind == "file":
            log.info(
                "keeping at most %d segment files open (%s)",
                config.max_open_files,
                "TIDEGATE_MAX_OPEN_FILES"
                if settings.max_open_files is not None
                else f"derived from the descriptor limit {descriptor_limit()}, "
                f"after {settings.max_connections} connections and 256 spare",
            )
        backend = await open_backend(config, observer=metrics)
        directory: TenantDirectory | None = None
        verifier: JwtVerifier | None = None
        redis_client: Any = None
        try:
            pepper = await asyncio.to_thread(key_pepper, settings)
            signer = await asyncio.to_thread(token_signer, settings)
            verifier = token_verifier(settings, signer)
            limiter, redis_client = rate_limiter(settings)
            path = str(Path(settings.data_dir) / TENANTS_DB)
            directory = await TenantDirectory.open(
                path,
                pepper=pepper,
                plans=plans_from_config(settings.plans),
                token_verifier=verifier,
            )
            given = settings.bootstrap_key
            created = await directory.bootstrap(
                given.get_secret_value() if given is not None else None
            )
            # Finish deleting tenants whose deletion was interrupted (their data).
            await purge_deleted_tenants(directory, backend.log, backend.schemas, backend.groups)
            if created is not None:
                # A key given by TIDEGATE_BOOTSTRAP_KEY is not echoed: logs keep no secrets.
                text = banner(settings, None if given is not None else created)
                stream = out if out is not None else sys.stdout
                stream.write(text + "\n")
                stream.flush()
            usage = TenantUsage()
            quotas = QuotaService(directory.limits, limiter)
            metrics.watch_tenants(usage, quotas.throttled, quotas.connections)
            lag_service = GroupService(backend.groups, backend.log)
            metrics.watch_group_lag(lambda: group_lags(lag_service, directory))
            app.state.runtime = Runtime(
                settings=settings,
                log=backend.log,
                state=backend.state,
                groups=backend.groups,
                directory=directory,
                quotas=quotas,
                signer=signer,
                auth_throttle=ClientAuthThrottle(
                    limiter,
                    burst=settings.oauth_failed_auth_burst,
                    per_second=settings.oauth_failed_auth_per_s,
                ),
                json_limits=json_limits(settings),
                metrics=metrics,
                usage=usage,
                drain=drain,
                schemas=backend.schemas,
                value_schemas=RegistryBinding(backend.schemas),
            )
            log.info("serving on %s (data in %s)", settings.base_url, settings.data_dir)
            if freeze_heap:
                freeze_startup_heap()
            yield
        finally:
            drain.begin()
            unfinished = await drain.wait_inflight(settings.drain_timeout_s)
            if unfinished:
                log.warning("%d appends still in flight at shutdown", unfinished)
            app.state.runtime = None
            try:
                if directory is not None:
                    await directory.close()
                if verifier is not None:
                    await verifier.close()
                if redis_client is not None:
                    await redis_client.aclose()
            finally:
                await backend.close()
            log.info("closed cleanly")

    return lifespan

"""Every setting of the gateway in one pydantic-settings class, built once at start-up.

Sources, highest priority first: explicit values (the CLI flags), `TIDEGATE_*`
environment variables, a config file (TOML or JSON; path from `--config` or
`TIDEGATE_CONFIG_FILE`), then the defaults below. The defaults are safe for a
laptop: loopback only, data in `./data`. The object is passed down explicitly;
no other module reads the environment.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ENV_PREFIX = "TIDEGATE_"


class OAuthIssuer(BaseModel):
    """A trusted external token issuer (used by the tenants layer)."""

    model_config = ConfigDict(extra="forbid")

    issuer: str
    jwks_url: str | None = None
    audience: str
    jwks: dict[str, Any] | None = None  # static keys instead of jwks_url
    tenant_claim: str = "tenant"
    scope_claim: str = "scope"
    # Pinned per issuer; the token's own `alg` header is never trusted to choose.
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"], min_length=1)
    # False: access tokens with `typ` at+jwt, JWT (what most IdPs send) or none; True: at+jwt.
    require_at_jwt: bool = False

    @model_validator(mode="after")
    def _one_key_source(self) -> OAuthIssuer:
        if (self.jwks_url is None) == (self.jwks is None):
            raise ValueError("give exactly one of jwks_url and jwks (static keys)")
        return self


class Settings(BaseSettings):
    """The gateway's configuration. Every bound is named here with its default."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        case_sensitive=False,
        frozen=True,
    )

    # -- where it listens and what it stores ---------------------------------------
    host: str = Field(
        default="127.0.0.1", description="Interface to listen on (loopback by default)."
    )
    port: int = Field(default=8080, ge=0, le=65535, description="TCP port to listen on.")
    storage: Literal["file", "redis"] = Field(default="file", description="Storage engine.")
    data_dir: Path = Field(default=Path("./data"), description="Data directory of the file engine.")
    redis_url: str | None = Field(default=None, description="Any node of the Redis deployment.")
    redis_cluster: bool = Field(
        default=False, description="Treat TIDEGATE_REDIS_URL as Redis Cluster."
    )
    storage_shards: int = Field(
        default=4, ge=1, le=256, description="Writer threads of the file engine."
    )
    retention_interval_s: float = Field(
        default=30.0, gt=0, description="How often segments past their retention are deleted."
    )
    max_open_files: int | None = Field(
        default=None,
        ge=16,
        description="Segment files the file engine keeps open (past it an idle one is closed, "
        "chosen at random, files not written lately first, and reopened when used; a file "
        "holding unsynced data is kept open until its sync); briefly up to 1.5 times this "
        "while writers sync. Unset: two thirds of what the descriptor limit leaves after "
        "TIDEGATE_MAX_CONNECTIONS and 256 spare, within 1,024 to 65,536 (logged at start).",
    )

    # -- credentials ---------------------------------------------------------------
    bootstrap_key: SecretStr | None = Field(
        default=None, description="Operator key to create on first start instead of a random one."
    )
    key_pepper: SecretStr | None = Field(
        default=None,
        description="Secret mixed into stored key hashes; else <data_dir>/secret (generated).",
    )
    oauth_issuers: list[OAuthIssuer] = Field(
        default_factory=list, description="Trusted external JWT issuers (JSON list)."
    )

    token_ttl_s: int = Field(
        default=900, ge=1, description="Lifetime of a token from POST /v1/tokens by default."
    )
    token_max_ttl_s: int = Field(
        default=3600, ge=1, description="Longest lifetime a client may ask of POST /v1/tokens."
    )
    token_key_rotate_s: int = Field(
        default=86_400, ge=60, description="Age at which the token-signing key is replaced."
    )
    token_issuer: str = Field(
        default="tidegate", min_length=1, description="`iss` of the gateway's own tokens."
    )

    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^/?#\s]+(/[^?#\s]*)?$",
        description="The URL clients reach the gateway on (https://... behind a TLS proxy): "
        "the OAuth2 metadata's issuer and endpoints; unset: each request's own base URL.",
    )
    oauth_failed_auth_burst: int = Field(
        default=10,
        ge=1,
        description="Failed OAuth2 client authentications per client id before it is throttled.",
    )
    oauth_failed_auth_per_s: float = Field(
        default=0.5,
        gt=0,
        description="Attempts per second a throttled client id regains (429 + Retry-After).",
    )

    # -- quotas --------------------------------------------------------------------
    plans: dict[str, dict[str, float | int | None]] = Field(
        default_factory=dict,
        description="Extra or changed plans (JSON: name -> limits); free/standard/unlimited exist.",
    )
    default_plan: str = Field(default="free", description="Plan of a tenant created without one.")
    rate_limiter: Literal["auto", "local", "redis"] = Field(
        default="auto",
        description="Where rate buckets live: redis (shared by gateways) when a Redis URL is set.",
    )

    # -- request bounds ------------------------------------------------------------
    max_body_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1024, description="Largest request body accepted (413 above)."
    )
    max_batch_records: int = Field(
        default=10_000, ge=1, description="Most records one produce request may carry."
    )
    max_json_depth: int = Field(
        default=64, ge=2, le=1000, description="Deepest JSON nesting accepted."
    )
    max_json_items: int = Field(
        default=250_000,
        ge=10,
        description="Most JSON values (array items, object members) per body.",
    )
    max_json_string_bytes: int = Field(
        default=4 * 1024 * 1024, ge=64, description="Longest single JSON string (in encoded bytes)."
    )
    max_fetch_records: int = Field(
        default=10_000, ge=1, description="Cap on `max_records` of a fetch."
    )
    max_fetch_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1024, description="Cap on `max_bytes` of a fetch."
    )
    fast_paths: bool = Field(
        default=True,
        description="Use the C fast paths for produce and fetch where they are built "
        "(false: the reference paths answer every request; the replies are the same).",
    )
    fetch_render_cache_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=0,
        description="Rendered fetch replies kept for readers of the same records (0: none).",
    )

    # -- client connections ---------------------------------------------------------
    head_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="Time for a request head (line and headers) from its first byte; 408 after.",
    )
    body_timeout_s: float = Field(
        default=20.0,
        gt=0,
        description="Time for a request body, plus 1 s per TIDEGATE_BODY_MIN_BYTES_PER_S received.",
    )
    body_min_bytes_per_s: int = Field(
        default=500,
        ge=1,
        description="Bytes a body must bring per second it takes past TIDEGATE_BODY_TIMEOUT_S.",
    )
    max_header_bytes: int = Field(
        default=16 * 1024,
        ge=1024,
        description="Largest request head (request line and header fields); 431 above.",
    )
    max_connections: int = Field(
        default=1000,
        ge=1,
        description="Open connections; past it the longest-idle one is closed, else 503.",
    )

    # -- long-poll -----------------------------------------------------------------
    max_wait_ms: int = Field(
        default=30_000,
        ge=0,
        description="Cap on a fetch's `max_wait_ms`; longer waits are clamped.",
    )
    max_long_polls: int = Field(
        default=10_000, ge=1, description="Concurrent waiting fetches; more get 503 + Retry-After."
    )

    # -- live streams (WebSocket and Server-Sent Events) ------------------------------
    stream_allowed_origins: list[str] = Field(
        default_factory=list,
        description="Origins (scheme://host:port) whose pages may open a WebSocket stream "
        "besides the gateway's own; '*' allows any (JSON list).",
    )
    stream_frame_records: int = Field(
        default=500, ge=1, le=10_000, description="Most records in one stream frame."
    )
    stream_frame_bytes: int = Field(
        default=256 * 1024,
        ge=1024,
        description="Record bytes one stream frame aims at (a larger single record still goes).",
    )
    stream_send_buffer_bytes: int = Field(
        default=64 * 1024,
        ge=4096,
        description="Bytes a stream connection may queue in the server before it stops "
        "sending to that client (the client falls behind in offsets, nothing is buffered).",
    )
    stream_stall_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="A stream whose client takes no data for this long while some waits is "
        "closed (4408).",
    )
    stream_max_message_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        description="Largest WebSocket message a client may send, after decompression (1009).",
    )
    stream_compression: bool = Field(
        default=False,
        description="Offer permessage-deflate on WebSocket streams (costs CPU and about 40 KB "
        "per connection; frames are then compressed once per connection).",
    )
    stream_ping_interval_s: float = Field(
        default=20.0, gt=0, description="Seconds between WebSocket pings."
    )
    stream_ping_timeout_s: float = Field(
        default=20.0, gt=0, description="A WebSocket whose pong is this late is closed."
    )
    stream_heartbeat_s: float = Field(
        default=15.0, gt=0, description="Seconds between Server-Sent Events heartbeat comments."
    )
    stream_retry_ms: int = Field(
        default=2000, ge=0, description="The `retry:` a Server-Sent Events stream announces."
    )

    # -- consumer groups -----------------------------------------------------------
    group_session_timeout_ms: int = Field(
        default=30_000,
        ge=1,
        description="A member's session when its join names none: silent longer, it is removed.",
    )
    group_min_session_timeout_ms: int = Field(
        default=1_000, ge=1, description="Shortest session a join may ask for (422 below)."
    )
    group_max_session_timeout_ms: int = Field(
        default=300_000, ge=1, description="Longest session a join may ask for (422 above)."
    )

    # -- idempotency ---------------------------------------------------------------
    idempotency_ttl_s: int = Field(
        default=24 * 3600,
        ge=60,
        description=(
            "How long an Idempotency-Key is honoured: its reply is kept, and each partition"
            " remembers the key's batches, this long."
        ),
    )
    idempotency_window_batches: int = Field(
        default=10_000,
        ge=0,
        description=(
            "Idempotent batches each partition remembers (the newest); a retry older than"
            " this many later idempotent appends to its partition may append again."
        ),
    )
    idempotency_pending_ttl_s: int = Field(
        default=3600,
        ge=1,
        description=(
            "How long the body of an unfinished idempotent request is remembered, so the"
            " same key with another body gets 422; it never makes a retry wait."
        ),
    )

    # -- lifecycle -----------------------------------------------------------------
    drain_timeout_s: float = Field(
        default=10.0, ge=0, description="How long shutdown waits for in-flight appends."
    )
    drain_grace_s: float = Field(
        default=0.5,
        ge=0,
        description=(
            "After SIGTERM, how long at least the server keeps listening and answers new "
            "requests 503 + Retry-After: 1 before it stops accepting connections."
        ),
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Log level of the server."
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="Log lines for people (text) or one JSON event a line (json)."
    )
    access_log: bool = Field(
        default=False,
        description="Log every request: request id, tenant, route, status, duration.",
    )
    metrics_max_topics: int = Field(
        default=1000,
        ge=1,
        description="Topics with series of their own at /metrics; the rest count as `other`.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Explicit values, then the environment; no dotenv or secrets directory."""
        return (init_settings, env_settings)

    @property
    def base_url(self) -> str:
        """The URL a local client reaches the server on."""
        wildcard = ("0.0.0.0", "", "::")  # noqa: S104 (recognised, not bound)
        host = "127.0.0.1" if self.host in wildcard else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"


class ConfigFileError(ValueError):
    """The config file cannot be read or parsed."""


class _ConfigLocator(BaseSettings):
    """Reads only TIDEGATE_CONFIG_FILE, so the file can be found before the rest loads."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    config_file: Path | None = None


def read_config_file(path: Path) -> dict[str, Any]:
    """The settings in a TOML (`.toml`) or JSON file, as a flat mapping of field names."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigFileError(f"cannot read config file {path}: {exc.strerror}") from exc
    try:
        if path.suffix.lower() == ".json":
            data: object = json.loads(raw)
        else:
            data = tomllib.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigFileError(f"cannot parse config file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigFileError(f"config file {path} must hold a table/object of settings")
    # Accept both `port` and `TIDEGATE_PORT` spellings, so env files can be pasted in.
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key).lower()
        if name.startswith(ENV_PREFIX.lower()):
            name = name[len(ENV_PREFIX) :]
        out[name] = value
    return out


def load_settings(
    overrides: Mapping[str, Any] | None = None, *, config_file: Path | None = None
) -> Settings:
    """Build the settings: `overrides` > environment > config file > defaults.

    Raises pydantic.ValidationError for invalid values and ConfigFileError for an
    unreadable file; the CLI turns both into an exit code.
    """
    explicit = {k: v for k, v in (overrides or {}).items() if v is not None}
    path = config_file if config_file is not None else _ConfigLocator().config_file
    file_values = read_config_file(path) if path is not None else {}

    class _WithFile(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings, InitSettingsSource(settings_cls, file_values))

    built = _WithFile(**explicit)
    # Hand out the plain class so nothing depends on the loader's subclass.
    return Settings.model_construct(
        **{name: getattr(built, name) for name in Settings.model_fields}
    )


def describe_settings() -> str:
    """One line per setting, for `tidegate --help`."""
    lines = []
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if isinstance(default, Path):
            default = str(default)
        if name in ("bootstrap_key", "key_pepper") or default is None:
            shown = "unset"
        else:
            shown = json.dumps(default) if not isinstance(default, str) else default
        env = f"{ENV_PREFIX}{name.upper()}"
        lines.append(f"  {env:<38} {field.description or ''} [default: {shown}]")
    return "\n".join(lines)

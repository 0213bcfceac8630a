"""The tenant directory: who exists, which keys they hold, and who a credential is.

`authenticate` is the one door every request passes: it turns a bearer
credential into a `Principal` or refuses it. The tenant comes only from the
verified credential. Verified key records are cached for a few seconds to keep
the store off the hot path; revoking a key or suspending a tenant through this
directory drops the cache entry at once, so it takes effect on the next request
(through another process sharing the store, within the cache's 5 s). A token
the gateway minted from a key is held to the same: it is refused once its key
is revoked or expired or its tenant suspended, by the same cached key record,
and once it is revoked on its own (by its `jti`, RFC 7009): the revocation is a
row in the store, so every process sharing the store refuses the token, this
one at once and the others within the same 5 s. Requests that find a key's
entry expired together share one read of it from the store; dropping the
entry drops that read too, so a request after a revocation reads anew.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from tenants import keys
from tenants.errors import (
    InvalidScopes,
    InvalidTenantName,
    KeyNotFound,
    OperatorScopeOnly,
    TenantExists,
    TenantNotFound,
    TenantSuspended,
    Unauthenticated,
    UnknownPlan,
)
from tenants.plans import DEFAULT_PLANS, Limits, effective_limits, parse_overrides
from tenants.principal import Principal, Scope, TenantId
from tenants.store import KeyRecord, TenantRecord, TenantStore

TENANT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
DEFAULT_TENANT = "default"
OPERATOR_PLAN = "unlimited"
_BAD_KEY = "unknown, revoked or expired API key"
_REVOKED_ORIGIN = "the API key the token was minted from is revoked or expired"
_REVOKED_TOKEN = "the token is revoked"  # noqa: S105 (a message)
# A revoked token's row outlives its `exp` by more than any clock-skew leeway (≤ 60 s).
_REVOCATION_KEPT_PAST_EXPIRY_MS = 120_000


class TokenVerifier(Protocol):
    """Verifies JWTs (the gateway's own and trusted issuers'); see tenants.jwt_verify."""

    async def verify(self, token: str, *, now_ms: int) -> Principal: ...


@dataclass(slots=True)
class _Cached:
    """A key as last read from the store, with the principal it stands for (built once:
    the principal is immutable, and the entry is replaced whenever the key is)."""

    record: KeyRecord
    status: str
    fetched_at: float
    principal: Principal

    @classmethod
    def of(cls, record: KeyRecord, tenant: TenantRecord, fetched_at: float) -> _Cached:
        principal = Principal(
            tenant=TenantId(record.tenant),
            credential_id=record.key_id,
            scopes=frozenset(record.scopes),
            topics=record.topics,
            expires_at_ms=record.expires_ms,
            via="key",
            namespace=tenant.uid,
        )
        return cls(record, tenant.status, fetched_at, principal)


@dataclass(frozen=True, slots=True)
class LoadedKey:
    """An API key's stored record, loaded ahead so that a presented secret can be
    checked against it without awaiting anything (`TenantDirectory.check_loaded_key`):
    what a synchronous caller such as an OAuth2 library's client check needs."""

    key_id: str
    tenant: str
    entry: _Cached


def _retrieved(task: asyncio.Task[_Cached | None]) -> None:
    """Mark a shared read's failure as seen even when every caller was cancelled."""
    if not task.cancelled():
        task.exception()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_tenant_uid() -> str:
    """A fresh tenant id: "T" and 16 hex digits (random). Tenant names are lowercase,
    so no id can equal a name (ids of tenants from before ids are their names)."""
    return "T" + secrets.token_hex(8)


def check_tenant_name(name: str) -> None:
    if not TENANT_NAME.fullmatch(name):
        raise InvalidTenantName(name)


def check_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    known = {s.value for s in Scope}
    given = tuple(dict.fromkeys(scopes))
    unknown = [s for s in given if s not in known]
    if unknown:
        raise InvalidScopes(unknown)
    return given


class TenantDirectory:
    """Tenants, keys and credential verification over a `TenantStore`."""

    def __init__(
        self,
        store: TenantStore,
        *,
        pepper: bytes,
        plans: Mapping[str, Limits] = DEFAULT_PLANS,
        cache_ttl_s: float = 5.0,
        touch_interval_ms: int = 60_000,
        token_verifier: TokenVerifier | None = None,
    ) -> None:
        self._store = store
        self._pepper = pepper
        self.plans = dict(plans)
        self._cache_ttl_s = cache_ttl_s
        self._touch_interval_ms = touch_interval_ms
        self._cache: dict[str, _Cached] = {}
        self._loading: dict[str, asyncio.Task[_Cached | None]] = {}  # reads in flight
        # SHA-256 of a key that verified -> (key id, the secret hash it verified
        # against): a key presented again skips parsing and the HMAC while that hash
        # still stands. Fingerprints, not secrets: as hard to reverse as the stored hash.
        self._verified: dict[bytes, tuple[str, str]] = {}
        # jti -> (revoked, when read): a token's revocation as last read from the store.
        self._revocations: dict[str, tuple[bool, float]] = {}
        self.token_verifier = token_verifier

    @classmethod
    async def open(
        cls,
        path: str,
        *,
        pepper: bytes,
        plans: Mapping[str, Limits] = DEFAULT_PLANS,
        token_verifier: TokenVerifier | None = None,
    ) -> TenantDirectory:
        store = await TenantStore.open(path)
        return cls(store, pepper=pepper, plans=plans, token_verifier=token_verifier)

    async def close(self) -> None:
        await self._store.close()

    # -- first start -------------------------------------------------------------------

    async def bootstrap(self, bootstrap_key: str | None) -> str | None:
        """On an empty store create tenant `default` with an operator key and return
        that key (to print once). With a given bootstrap key, also make sure it is
        accepted on later starts; returns None when nothing new was created.
        """
        if (
            bootstrap_key is not None
            and not keys.is_bootstrap_key(bootstrap_key)
            and keys.parse_key(bootstrap_key) is None
        ):
            raise Unauthenticated(
                f"a bootstrap key starts with {keys.PREFIX!r} and has at least "
                f"{keys.MIN_BOOTSTRAP_LENGTH} characters"
            )
        now = _now_ms()
        if await self._store.count_tenants() == 0:
            await self._store.insert_tenant(
                TenantRecord(DEFAULT_TENANT, OPERATOR_PLAN, "active", now, {}, new_tenant_uid())
            )
            if bootstrap_key is not None:
                await self._store_bootstrap_key(bootstrap_key, now)
                return bootstrap_key
            _, key = await self.create_key(DEFAULT_TENANT, [Scope.ADMIN.value])
            return key
        if bootstrap_key is not None and await self._store.get_tenant(DEFAULT_TENANT):
            key_id, secret = self._id_and_secret(bootstrap_key)
            existing = await self._store.get_key(key_id)
            if existing is None or not keys.secret_matches(
                secret, existing.secret_hash, self._pepper
            ):
                await self._store_bootstrap_key(bootstrap_key, now)
        return None

    async def _store_bootstrap_key(self, key: str, now_ms: int) -> None:
        key_id, secret = self._id_and_secret(key)
        await self._store.upsert_key(
            KeyRecord(
                key_id=key_id,
                tenant=DEFAULT_TENANT,
                secret_hash=keys.hash_secret(secret, self._pepper),
                scopes=(Scope.ADMIN.value,),
                topics=(),
                created_ms=now_ms,
                expires_ms=None,
                revoked=False,
                last_used_ms=None,
            )
        )
        self._drop(key_id)

    @staticmethod
    def _id_and_secret(key: str) -> tuple[str, str]:
        parsed = keys.parse_key(key)
        if parsed is not None:
            return parsed
        return keys.BOOTSTRAP_KEY_ID, key

    # -- authentication ----------------------------------------------------------------

    async def authenticate(self, credential: str, *, now_ms: int) -> Principal:
        """The principal a bearer credential stands for; raises Unauthenticated
        (or its InvalidToken subclass) and TenantSuspended."""
        if credential.startswith(keys.PREFIX):
            return await self._authenticate_key(credential, now_ms)
        if credential.count(".") == 2:
            if self.token_verifier is None:
                raise Unauthenticated("this gateway accepts no tokens")
            principal = await self.token_verifier.verify(credential, now_ms=now_ms)
            if principal.minted_from is not None:
                namespace = await self._check_minting_key(principal, now_ms)
                if principal.token_id is not None and await self._revoked(principal.token_id):
                    raise Unauthenticated(_REVOKED_TOKEN)
            else:
                namespace = (await self._check_tenant_active(principal.tenant)).uid
            return dataclasses.replace(principal, namespace=namespace)
        raise Unauthenticated("the credential is neither an API key nor a JWT")

    def authenticate_cached(self, credential: str, *, now_ms: int) -> Principal | None:
        """`authenticate` for an API key whose entry is cached and needs no write
        (its last use was recorded recently), decided without awaiting anything;
        None when it needs the store (then call `authenticate`). Raises as
        `authenticate` does for a key it can decide."""
        if not credential.startswith(keys.PREFIX):
            return None
        fingerprint = hashlib.sha256(credential.encode()).digest()
        known = self._verified.get(fingerprint)
        if known is not None:
            key_id, verified_against = known
            cached = self._usable(key_id, now_ms)
            if cached is None:
                return None
            if cached.record.secret_hash == verified_against:
                return self._standing(cached, now_ms)
            del self._verified[fingerprint]  # the key changed since: check it in full
        key_id, secret = self._split_key(credential)
        cached = self._usable(key_id, now_ms)
        if cached is None:
            return None
        principal = self._verify_key(cached, secret, now_ms)
        if len(self._verified) >= 100_000:
            self._verified.clear()  # bounded; a miss only costs the full check
        self._verified[fingerprint] = (key_id, cached.record.secret_hash)
        return principal

    def _usable(self, key_id: str, now_ms: int) -> _Cached | None:
        """The key's cache entry if it is fresh and its use needs no write, else None."""
        cached = self._cache.get(key_id)
        if cached is None or time.monotonic() - cached.fetched_at >= self._cache_ttl_s:
            return None
        return None if self._touch_due(cached.record, now_ms) else cached

    async def _authenticate_key(self, credential: str, now_ms: int) -> Principal:
        key_id, secret = self._split_key(credential)
        cached = await self._lookup(key_id)
        if cached is None:
            raise Unauthenticated(_BAD_KEY)
        principal = self._verify_key(cached, secret, now_ms)
        if self._touch_due(cached.record, now_ms):
            await self._store.touch_key(key_id, now_ms)
            self._drop(key_id)
        return principal

    @staticmethod
    def _split_key(credential: str) -> tuple[str, str]:
        """(key_id, secret) of a minted or bootstrap key; Unauthenticated otherwise."""
        parsed = keys.parse_key(credential)
        if parsed is None:
            if not keys.is_bootstrap_key(credential):
                raise Unauthenticated("malformed API key")
            parsed = (keys.BOOTSTRAP_KEY_ID, credential)
        return parsed

    def _verify_key(self, cached: _Cached, secret: str, now_ms: int) -> Principal:
        if not keys.secret_matches(secret, cached.record.secret_hash, self._pepper):
            raise Unauthenticated(_BAD_KEY)
        return self._standing(cached, now_ms)

    @staticmethod
    def _standing(cached: _Cached, now_ms: int) -> Principal:
        """The key's principal if it is still good: not revoked, expired or suspended."""
        record = cached.record
        if record.revoked or (record.expires_ms is not None and record.expires_ms <= now_ms):
            raise Unauthenticated(_BAD_KEY)
        if cached.status != "active":
            raise TenantSuspended(record.tenant)
        return cached.principal

    def _touch_due(self, record: KeyRecord, now_ms: int) -> bool:
        return (
            record.last_used_ms is None or now_ms - record.last_used_ms >= self._touch_interval_ms
        )

    async def _lookup(self, key_id: str) -> _Cached | None:
        hit = self._cache.get(key_id)
        if hit is not None and time.monotonic() - hit.fetched_at < self._cache_ttl_s:
            return hit
        loading = self._loading.get(key_id)
        if loading is None:
            loading = asyncio.ensure_future(self._load(key_id))
            self._loading[key_id] = loading
            loading.add_done_callback(_retrieved)
        return await asyncio.shield(loading)  # one caller's cancellation is not the others'

    async def _load(self, key_id: str) -> _Cached | None:
        """The key's record and tenant from the store, cached unless dropped meanwhile."""
        me = asyncio.current_task()
        try:
            record = await self._store.get_key(key_id)
            if record is None:
                if self._loading.get(key_id) is me:
                    self._cache.pop(key_id, None)
                return None
            tenant = await self._store.get_tenant(record.tenant)
            if tenant is None:
                return None
            entry = _Cached.of(record, tenant, time.monotonic())
            if self._loading.get(key_id) is me:
                if len(self._cache) > 100_000:
                    self._cache.clear()  # bounded; the store stays the source of truth
                self._cache[key_id] = entry
            return entry
        finally:
            if self._loading.get(key_id) is me:
                del self._loading[key_id]

    def _drop(self, key_id: str) -> None:
        """Forget the key's entry and any read of it in flight: the next use reads anew."""
        self._cache.pop(key_id, None)
        self._loading.pop(key_id, None)

    async def _check_minting_key(self, principal: Principal, now_ms: int) -> str:
        """A gateway token stands while the key it was minted from does (cached as keys
        are, so revocation reaches it exactly as it reaches the key)."""
        assert principal.minted_from is not None
        cached = await self._lookup(principal.minted_from)
        if cached is None or cached.record.tenant != principal.tenant:
            raise Unauthenticated(_REVOKED_ORIGIN)
        record = cached.record
        if record.revoked or (record.expires_ms is not None and record.expires_ms <= now_ms):
            raise Unauthenticated(_REVOKED_ORIGIN)
        if cached.status != "active":
            raise TenantSuspended(record.tenant)
        return cached.principal.namespace

    async def _revoked(self, token_id: str) -> bool:
        hit = self._revocations.get(token_id)
        if hit is not None and time.monotonic() - hit[1] < self._cache_ttl_s:
            return hit[0]
        revoked = await self._store.is_token_revoked(token_id)
        if len(self._revocations) > 100_000:
            self._revocations.clear()  # bounded; the store stays the source of truth
        self._revocations[token_id] = (revoked, time.monotonic())
        return revoked

    async def revoke_token(self, principal: Principal, *, now_ms: int) -> bool:
        """Revoke one gateway token (a principal `authenticate` returned for it): from
        now on it is refused everywhere, also by other processes sharing the store.
        False, and nothing recorded, for a token that cannot be revoked on its own (an
        external issuer's, or one without `jti`)."""
        if principal.minted_from is None or principal.token_id is None:
            return False
        expires_ms = principal.expires_at_ms if principal.expires_at_ms is not None else now_ms
        await self._store.revoke_token(
            principal.token_id,
            principal.tenant,
            expires_ms + _REVOCATION_KEPT_PAST_EXPIRY_MS,
            now_ms,
        )
        self._revocations[principal.token_id] = (True, time.monotonic())
        return True

    # -- keys as OAuth2 clients ----------------------------------------------------------

    async def load_key(self, key_id: str) -> LoadedKey | None:
        """The key `key_id` as stored (cached as for `authenticate`), or None."""
        cached = await self._lookup(key_id)
        if cached is None:
            return None
        return LoadedKey(key_id, cached.record.tenant, cached)

    def check_loaded_key(self, loaded: LoadedKey, credential: str, *, now_ms: int) -> Principal:
        """The principal of `credential` if it is the loaded key itself (its own id, its
        secret) and the key stands; Unauthenticated or TenantSuspended otherwise."""
        key_id, secret = self._split_key(credential)
        if key_id != loaded.key_id:
            raise Unauthenticated(_BAD_KEY)
        return self._verify_key(loaded.entry, secret, now_ms)

    async def record_use(self, loaded: LoadedKey, *, now_ms: int) -> None:
        """Note the key's use (`last_used_ms`) as `authenticate` does, when due."""
        if self._touch_due(loaded.entry.record, now_ms):
            await self._store.touch_key(loaded.key_id, now_ms)
            self._drop(loaded.key_id)

    async def _check_tenant_active(self, tenant: str) -> TenantRecord:
        record = await self._store.get_tenant(tenant)
        if record is None:
            raise Unauthenticated("the token names an unknown tenant")
        if record.status != "active":
            raise TenantSuspended(tenant)
        return record

    # -- tenants -----------------------------------------------------------------------

    async def create_tenant(self, name: str, plan: str = "free") -> TenantRecord:
        check_tenant_name(name)
        self._check_plan(plan)
        record = TenantRecord(name, plan, "active", _now_ms(), {}, new_tenant_uid())
        if not await self._store.insert_tenant(record):
            raise TenantExists(name)
        return record

    async def get_tenant(self, name: str) -> TenantRecord:
        record = await self._store.get_tenant(name)
        if record is None:
            raise TenantNotFound(name)
        return record

    async def list_tenants(self) -> list[TenantRecord]:
        return await self._store.list_tenants()

    async def set_status(self, name: str, status: str) -> TenantRecord:
        """Suspend (`suspended`) or resume (`active`) a tenant; effective at once."""
        if not await self._store.update_tenant(name, status=status):
            raise TenantNotFound(name)
        self._forget_tenant(name)
        return await self.get_tenant(name)

    async def set_plan(self, name: str, plan: str) -> TenantRecord:
        self._check_plan(plan)
        if not await self._store.update_tenant(name, plan=plan):
            raise TenantNotFound(name)
        return await self.get_tenant(name)

    async def set_overrides(self, name: str, raw: Mapping[str, object]) -> TenantRecord:
        """Replace the tenant's quota overrides (validated; null means unlimited)."""
        overrides = parse_overrides(raw)
        if not await self._store.update_tenant(name, overrides=dict(overrides)):
            raise TenantNotFound(name)
        return await self.get_tenant(name)

    def _check_plan(self, plan: str) -> None:
        if plan not in self.plans:
            raise UnknownPlan(plan, tuple(self.plans))

    def limits_of(self, record: TenantRecord) -> Limits:
        """The tenant's effective limits: its plan's values with its overrides applied.
        A plan since removed from the configuration counts as plan `free`, never as
        unlimited."""
        plan = self.plans.get(record.plan)
        if plan is None:
            plan = self.plans.get("free") or next(iter(self.plans.values()))
        return effective_limits(plan, record.overrides)

    async def limits(self, name: str) -> Limits:
        return self.limits_of(await self.get_tenant(name))

    async def delete_tenant(self, name: str) -> str:
        """Delete the tenant and its keys at once (the name is free from here on) and
        return its id, whose data the caller then purges (see `unpurged`)."""
        uid = await self._store.delete_tenant(name, _now_ms())
        if uid is None:
            raise TenantNotFound(name)
        self._forget_tenant(name)
        return uid

    async def deleted_ids(self) -> list[str]:
        """Ids of every tenant ever deleted (never reused; their data is purged)."""
        return await self._store.deleted_ids()

    async def unpurged(self) -> list[str]:
        """Ids of deleted tenants whose data may still exist: purge, then `purged`."""
        return await self._store.unpurged()

    async def purged(self, uid: str) -> None:
        await self._store.mark_purged(uid, _now_ms())

    def _forget_tenant(self, name: str) -> None:
        for key_id in [k for k, v in self._cache.items() if v.record.tenant == name]:
            del self._cache[key_id]
        self._loading.clear()  # whose keys they read is not known until they finish

    # -- keys --------------------------------------------------------------------------

    async def create_key(
        self,
        tenant: str,
        scopes: Iterable[str],
        topics: Iterable[str] = (),
        *,
        expires_ms: int | None = None,
    ) -> tuple[str, str]:
        """Mint a key for `tenant`; returns (key_id, key). The key is not kept.

        Only the operator tenant's keys may hold `admin`: with it a key would
        administer every tenant.
        """
        await self.get_tenant(tenant)
        granted = check_scopes(scopes)
        if Scope.ADMIN.value in granted and tenant != DEFAULT_TENANT:
            raise OperatorScopeOnly(tenant, DEFAULT_TENANT)
        key_id, key = keys.mint_key()
        parsed = keys.parse_key(key)
        assert parsed is not None
        await self._store.upsert_key(
            KeyRecord(
                key_id=key_id,
                tenant=tenant,
                secret_hash=keys.hash_secret(parsed[1], self._pepper),
                scopes=granted,
                topics=tuple(topics),
                created_ms=_now_ms(),
                expires_ms=expires_ms,
                revoked=False,
                last_used_ms=None,
            )
        )
        return key_id, key

    async def revoke_key(self, tenant: str, key_id: str) -> None:
        if not await self._store.revoke_key(tenant, key_id):
            raise KeyNotFound(key_id)
        self._drop(key_id)

    async def get_key(self, tenant: str, key_id: str) -> KeyRecord:
        record = await self._store.get_key(key_id)
        if record is None or record.tenant != tenant:
            raise KeyNotFound(key_id)
        return record

    async def list_keys(self, tenant: str) -> list[KeyRecord]:
        await self.get_tenant(tenant)
        return await self._store.list_keys(tenant)

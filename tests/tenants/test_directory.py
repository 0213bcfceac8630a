"""The tenant directory: bootstrap, key authentication, revocation, suspension."""

import asyncio
import contextlib
import functools
import hashlib
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tenants.directory import TenantDirectory
from tenants.errors import (
    InvalidTenantName,
    KeyNotFound,
    OperatorScopeOnly,
    TenantExists,
    TenantSuspended,
    Unauthenticated,
    UnknownPlan,
)
from tenants.minting import mint_access_token
from tenants.store import TenantStore
from tenants.tokens import JwtVerifier, TokenSigner

pytestmark = pytest.mark.anyio

PEPPER = b"test-pepper-0123456789"
NOW = 1_764_000_000_000


@pytest.fixture
async def directory(tmp_path: Path) -> AsyncIterator[TenantDirectory]:
    d = await TenantDirectory.open(str(tmp_path / "tenants.db"), pepper=PEPPER)
    try:
        yield d
    finally:
        await d.close()


async def test_first_bootstrap_creates_default_tenant_and_operator_key(
    directory: TenantDirectory,
) -> None:
    key = await directory.bootstrap(None)
    assert key is not None
    assert key.startswith("tg_")
    principal = await directory.authenticate(key, now_ms=NOW)
    assert principal.tenant == "default"
    assert principal.allows("admin")
    assert principal.allows("topics:write")
    assert await directory.bootstrap(None) is None  # printed once only


async def test_given_bootstrap_key_is_accepted_as_is_and_after_reopen(tmp_path: Path) -> None:
    given = "tg_" + "k" * 40
    path = str(tmp_path / "t.db")
    d = await TenantDirectory.open(path, pepper=PEPPER)
    assert await d.bootstrap(given) == given
    await d.close()
    d = await TenantDirectory.open(path, pepper=PEPPER)
    try:
        assert await d.bootstrap(given) is None
        assert (await d.authenticate(given, now_ms=NOW)).tenant == "default"
        other = "tg_" + "z" * 40
        await d.bootstrap(other)  # a changed bootstrap key is honoured on restart
        assert (await d.authenticate(other, now_ms=NOW)).tenant == "default"
    finally:
        await d.close()


async def test_short_bootstrap_key_is_refused(directory: TenantDirectory) -> None:
    with pytest.raises(Unauthenticated):
        await directory.bootstrap("tg_short")


async def test_tenant_key_carries_scopes_and_topic_patterns(directory: TenantDirectory) -> None:
    await directory.create_tenant("acme", "standard")
    _, key = await directory.create_key("acme", ["topics:read"], ["orders*"])
    p = await directory.authenticate(key, now_ms=NOW)
    assert p.tenant == "acme"
    assert p.allows("topics:read")
    assert not p.allows("topics:write")
    assert p.may_use_topic("orders-eu")
    assert not p.may_use_topic("payments")


@pytest.mark.parametrize(
    "credential",
    ["", "nonsense", "tg_", "tg_abcdefabcdef_" + "A" * 43 + "_000000", "a.b.c"],
)
async def test_bad_credentials_are_refused(directory: TenantDirectory, credential: str) -> None:
    await directory.bootstrap(None)
    with pytest.raises(Unauthenticated):
        await directory.authenticate(credential, now_ms=NOW)


async def test_wrong_secret_with_a_real_key_id_is_refused(directory: TenantDirectory) -> None:
    await directory.create_tenant("acme")
    _, key = await directory.create_key("acme", ["topics:read"])
    _, other = await directory.create_key("acme", ["topics:read"])
    body = key[:16] + other[16:59]  # real id, another key's secret, valid checksum
    forged = f"{body}_{hashlib.sha256(body.encode()).hexdigest()[:6]}"
    with pytest.raises(Unauthenticated):
        await directory.authenticate(forged, now_ms=NOW)


async def test_revocation_takes_effect_at_once(directory: TenantDirectory) -> None:
    await directory.create_tenant("acme")
    key_id, key = await directory.create_key("acme", ["topics:read"])
    await directory.authenticate(key, now_ms=NOW)  # now cached
    await directory.revoke_key("acme", key_id)
    with pytest.raises(Unauthenticated):
        await directory.authenticate(key, now_ms=NOW)
    with pytest.raises(KeyNotFound):
        await directory.revoke_key("other", key_id)


async def test_expired_key_is_refused(directory: TenantDirectory) -> None:
    await directory.create_tenant("acme")
    _, key = await directory.create_key("acme", ["topics:read"], expires_ms=NOW + 1000)
    await directory.authenticate(key, now_ms=NOW)
    with pytest.raises(Unauthenticated):
        await directory.authenticate(key, now_ms=NOW + 1000)


async def test_suspended_tenant_is_refused_until_resumed(directory: TenantDirectory) -> None:
    await directory.create_tenant("acme")
    _, key = await directory.create_key("acme", ["topics:read"])
    await directory.authenticate(key, now_ms=NOW)
    await directory.set_status("acme", "suspended")
    with pytest.raises(TenantSuspended):
        await directory.authenticate(key, now_ms=NOW)
    await directory.set_status("acme", "active")
    assert (await directory.authenticate(key, now_ms=NOW)).tenant == "acme"


async def test_tenant_names_plans_and_duplicates(directory: TenantDirectory) -> None:
    await directory.create_tenant("acme")
    with pytest.raises(TenantExists):
        await directory.create_tenant("acme")
    for bad in ["", "Acme", "a~b", "../x", "-x", "x" * 64, "acme\n", "beta\n"]:
        with pytest.raises(InvalidTenantName):
            await directory.create_tenant(bad)
    with pytest.raises(UnknownPlan):
        await directory.create_tenant("beta", "platinum")


async def test_store_holds_no_plaintext_secret(tmp_path: Path) -> None:
    path = tmp_path / "tenants.db"
    d = await TenantDirectory.open(str(path), pepper=PEPPER)
    bootstrap = await d.bootstrap(None)
    await d.create_tenant("acme")
    _, key = await d.create_key("acme", ["topics:read"])
    await d.close()
    assert bootstrap is not None
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    for k in (key, bootstrap):
        secret = k[16:59]
        assert secret.encode() not in raw
        assert k.encode() not in raw


async def test_only_the_operator_tenant_gets_keys_with_the_operator_scope(
    directory: TenantDirectory,
) -> None:
    await directory.bootstrap(None)
    await directory.create_tenant("acme")
    with pytest.raises(OperatorScopeOnly):
        await directory.create_key("acme", ["topics:read", "admin"])
    assert await directory.list_keys("acme") == []
    key_id, _ = await directory.create_key("default", ["admin"])
    assert (await directory.get_key("default", key_id)).scopes == ("admin",)


async def test_a_cached_key_is_decided_without_the_store_and_the_same_way(
    directory: TenantDirectory,
) -> None:
    await directory.create_tenant("acme")
    key_id, key = await directory.create_key("acme", ["topics:read"])
    _, other = await directory.create_key("acme", ["topics:read"])
    assert directory.authenticate_cached(key, now_ms=NOW) is None  # nothing cached yet
    await directory.authenticate(key, now_ms=NOW)  # records the use, which drops the entry
    principal = await directory.authenticate(key, now_ms=NOW + 1)  # cached now
    assert directory.authenticate_cached(key, now_ms=NOW + 2) == principal
    assert directory.authenticate_cached(key, now_ms=NOW + 2) == principal  # known now
    body = key[:16] + other[16:59]
    forged = f"{body}_{hashlib.sha256(body.encode()).hexdigest()[:6]}"
    with pytest.raises(Unauthenticated):
        directory.authenticate_cached(forged, now_ms=NOW + 2)
    with pytest.raises(Unauthenticated):
        directory.authenticate_cached("tg_short", now_ms=NOW + 2)
    assert directory.authenticate_cached(key, now_ms=NOW + 10**9) is None  # a use to record
    assert directory.authenticate_cached("a.b.c", now_ms=NOW) is None  # tokens: the async path
    await directory.revoke_key("acme", key_id)
    assert directory.authenticate_cached(key, now_ms=NOW + 3) is None
    with pytest.raises(Unauthenticated):
        await directory.authenticate(key, now_ms=NOW + 3)
    with pytest.raises(Unauthenticated):  # the revoked record is cached now: still refused
        directory.authenticate_cached(key, now_ms=NOW + 3)


async def test_tenants_have_immutable_ids_never_reused_after_deletion(
    directory: TenantDirectory,
) -> None:
    first = await directory.create_tenant("acme")
    assert first.uid.startswith("T")
    assert first.uid != "acme"
    _, key = await directory.create_key("acme", ["topics:read"])
    assert (await directory.authenticate(key, now_ms=NOW)).namespace == first.uid
    assert await directory.delete_tenant("acme") == first.uid
    with pytest.raises(Unauthenticated):
        await directory.authenticate(key, now_ms=NOW)
    second = await directory.create_tenant("acme")
    assert second.uid != first.uid
    assert await directory.list_keys("acme") == []  # the old keys went with the old tenant
    assert await directory.deleted_ids() == [first.uid]
    assert await directory.unpurged() == [first.uid]
    await directory.purged(first.uid)
    assert await directory.unpurged() == []


async def test_a_store_from_before_ids_gives_its_tenants_their_names_as_ids(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tenants.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE tenants (name TEXT PRIMARY KEY, plan TEXT NOT NULL,"
        " status TEXT NOT NULL DEFAULT 'active', created_ms INTEGER NOT NULL,"
        " overrides TEXT NOT NULL DEFAULT '{}');"
        "INSERT INTO tenants VALUES ('legacy', 'free', 'active', 1, '{}');"
    )
    conn.commit()
    conn.close()
    directory = await TenantDirectory.open(str(path), pepper=PEPPER)
    try:
        assert (await directory.get_tenant("legacy")).uid == "legacy"
        assert (await directory.create_tenant("newer")).uid.startswith("T")
    finally:
        await directory.close()


async def _minting_directories(
    tmp_path: Path,
) -> tuple[TenantDirectory, TenantDirectory, TokenSigner, str]:
    """Two directories on one store (two gateway processes) verifying one signer's
    tokens, and a key of tenant acme; the second one re-reads the store every time."""
    signer = TokenSigner.load_or_create(tmp_path / "token-keys.json")
    path = str(tmp_path / "tenants.db")
    first = await TenantDirectory.open(
        path, pepper=PEPPER, token_verifier=JwtVerifier([], signer=signer)
    )
    store = await TenantStore.open(path)
    second = TenantDirectory(
        store, pepper=PEPPER, cache_ttl_s=0.0, token_verifier=JwtVerifier([], signer=signer)
    )
    await first.create_tenant("acme")
    _, key = await first.create_key("acme", ["topics:read"])
    return first, second, signer, key


async def test_a_revoked_token_is_refused_by_every_directory_sharing_the_store(
    tmp_path: Path,
) -> None:
    first, second, signer, key = await _minting_directories(tmp_path)
    try:
        now_s = int(time.time())
        principal = await first.authenticate(key, now_ms=now_s * 1000)
        mint = functools.partial(
            mint_access_token,
            signer,
            principal,
            scopes=["topics:read"],
            topics=[],
            ttl_s=60,
            now_s=now_s,
        )
        revoked, kept = mint(), mint()
        token = await first.authenticate(revoked, now_ms=now_s * 1000)
        assert token.token_id
        assert token.issued_at_ms == now_s * 1000
        assert (await second.authenticate(revoked, now_ms=now_s * 1000)).token_id
        assert await first.revoke_token(token, now_ms=now_s * 1000)
        for directory in (first, second):
            with pytest.raises(Unauthenticated):
                await directory.authenticate(revoked, now_ms=now_s * 1000)
            assert (await directory.authenticate(kept, now_ms=now_s * 1000)).tenant == "acme"
        # An API key's principal is no token: nothing to revoke on its own.
        assert not await first.revoke_token(principal, now_ms=now_s * 1000)
    finally:
        await first.close()
        await second.close()


async def test_revoked_token_rows_are_dropped_once_their_tokens_expired(tmp_path: Path) -> None:
    store = await TenantStore.open(str(tmp_path / "tenants.db"))
    try:
        await store.revoke_token("old", "acme", expires_ms=NOW + 1_000, now_ms=NOW)
        await store.revoke_token("new", "acme", expires_ms=NOW + 10_000, now_ms=NOW + 5_000)
        assert not await store.is_token_revoked("old")
        assert await store.is_token_revoked("new")
    finally:
        await store.close()


async def test_a_loaded_key_checks_only_its_own_secret(directory: TenantDirectory) -> None:
    await directory.create_tenant("acme")
    key_id, key = await directory.create_key("acme", ["topics:read"])
    _, other = await directory.create_key("acme", ["topics:read"])
    loaded = await directory.load_key(key_id)
    assert loaded is not None
    assert loaded.tenant == "acme"
    assert directory.check_loaded_key(loaded, key, now_ms=NOW).credential_id == key_id
    typo = key[:-1] + ("1" if key[-1] == "0" else "0")  # fails its checksum
    for wrong in (other, typo, "tg_" + "x" * 40):
        with pytest.raises(Unauthenticated):
            directory.check_loaded_key(loaded, wrong, now_ms=NOW)
    assert await directory.load_key("aaaaaaaaaaaa") is None
    await directory.set_status("acme", "suspended")
    loaded = await directory.load_key(key_id)
    assert loaded is not None
    with pytest.raises(TenantSuspended):
        directory.check_loaded_key(loaded, key, now_ms=NOW)


async def test_requests_that_find_a_key_uncached_together_share_one_store_read(
    directory: TenantDirectory, monkeypatch: pytest.MonkeyPatch
) -> None:
    await directory.create_tenant("acme")
    _, key = await directory.create_key("acme", ["topics:read"])
    store = directory._store
    reads = 0
    read_key = store.get_key

    async def counted(key_id: str) -> object:
        nonlocal reads
        reads += 1
        return await read_key(key_id)

    monkeypatch.setattr(store, "get_key", counted)
    principals = await asyncio.gather(*(directory.authenticate(key, now_ms=NOW) for _ in range(20)))
    assert {p.tenant for p in principals} == {"acme"}
    assert reads == 1


async def test_a_revocation_while_a_read_is_in_flight_holds_for_the_next_request(
    directory: TenantDirectory, monkeypatch: pytest.MonkeyPatch
) -> None:
    await directory.create_tenant("acme")
    key_id, key = await directory.create_key("acme", ["topics:read"])
    store = directory._store
    release = asyncio.Event()
    read_tenant = store.get_tenant

    async def slow(name: str) -> object:  # the store read, held until released
        await release.wait()
        return await read_tenant(name)

    monkeypatch.setattr(store, "get_tenant", slow)
    before = asyncio.ensure_future(directory.authenticate(key, now_ms=NOW))
    for _ in range(10):
        await asyncio.sleep(0.01)  # its key record is read; it waits on the tenant
    await directory.revoke_key("acme", key_id)
    after = asyncio.ensure_future(directory.authenticate(key, now_ms=NOW))
    await asyncio.sleep(0.01)
    release.set()
    with pytest.raises(Unauthenticated):
        await after
    with contextlib.suppress(Unauthenticated):
        await before  # began before the revocation: either answer is right

"""JWT verification against a real JWKS server on loopback, and the gateway's own signer.

The JWKS is served by a `ThreadingHTTPServer` in a thread so that fetching, rate
limiting, outages, slowness and size limits are exercised over real HTTP; the
tests count its hits per path to prove what was (not) fetched.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import stat
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from joserfc import jwt
from joserfc.jwk import ECKey, Key, RSAKey

from tenants.errors import InvalidToken
from tenants.principal import Scope
from tenants.tokens import IssuerConfig, JwtVerifier, TokenSigner

pytestmark = pytest.mark.anyio

ISSUER = "https://idp.example"
AUDIENCE = "tidegate-api"


# -- the JWKS server -------------------------------------------------------------------


@dataclass
class JwksState:
    """What the server answers; tests change it between requests."""

    keys: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    delay_s: float = 0.0
    pad_bytes: int = 0
    send_length: bool = True
    hits: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def hit_count(self, path: str = "/jwks.json") -> int:
        with self.lock:
            return self.hits.get(path, 0)


class JwksServer:
    def __init__(self) -> None:
        self.state = JwksState()
        state = self.state

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with state.lock:
                    state.hits[self.path] = state.hits.get(self.path, 0) + 1
                if state.delay_s:
                    time.sleep(state.delay_s)
                if state.status != 200:
                    self.send_response(state.status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                document: dict[str, Any] = {"keys": state.keys}
                if state.pad_bytes:
                    document["padding"] = "x" * state.pad_bytes
                body = json.dumps(document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                if state.send_length:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                # The client may hang up at its size limit.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def url(self, path: str = "/jwks.json") -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# -- keys and token helpers ------------------------------------------------------------


def rsa_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, {"kid": kid, "use": "sig", "alg": "RS256"})


def ec_key(kid: str) -> ECKey:
    return ECKey.generate_key("P-256", {"kid": kid, "use": "sig", "alg": "ES256"})


def public(key: Key) -> dict[str, Any]:
    return dict(key.as_dict(private=False))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: dict[str, Any]) -> str:
    return b64(json.dumps(value).encode())


def now_s() -> int:
    return int(time.time())


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def claims(**overrides: Any) -> dict[str, Any]:
    t = now_s()
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-7",
        "tenant": "acme",
        "scope": "topics:read topics:write made:up",
        "topics": ["orders*", "billing"],
        "iat": t,
        "nbf": t,
        "exp": t + 300,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def make_token(
    key: Key,
    payload: dict[str, Any] | None = None,
    *,
    alg: str = "RS256",
    **header: Any,
) -> str:
    hdr: dict[str, Any] = {"alg": alg, "typ": "at+jwt", "kid": key.kid}
    hdr.update(header)
    hdr = {k: v for k, v in hdr.items() if v is not None}
    body = payload if payload is not None else claims()
    return jwt.encode(hdr, body, key, algorithms=[alg], default_type=None)


def rs256_raw(key: RSAKey, header: dict[str, Any], payload: dict[str, Any]) -> str:
    """Sign by hand, for headers joserfc itself refuses to produce."""
    private = key.private_key
    assert private is not None
    signing_input = f"{b64json(header)}.{b64json(payload)}"
    signature = private.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64(signature)}"


def hmac_token(secret: bytes, header: dict[str, Any], payload: dict[str, Any]) -> str:
    signing_input = f"{b64json(header)}.{b64json(payload)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


# -- fixtures --------------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[JwksServer]:
    srv = JwksServer()
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture
def key_a() -> RSAKey:
    return rsa_key("a")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def verifier(
    server: JwksServer, key_a: RSAKey, clock: FakeClock
) -> AsyncIterator[JwtVerifier]:
    server.state.keys = [public(key_a)]
    v = JwtVerifier(
        [IssuerConfig(issuer=ISSUER, jwks_url=server.url(), audience=AUDIENCE)],
        signer=None,
        jwks_options={"clock": clock, "timeout_s": 5.0},
    )
    try:
        yield v
    finally:
        await v.close()


async def refused(verifier: JwtVerifier, token: str) -> str:
    with pytest.raises(InvalidToken) as info:
        await verifier.verify(token, now_ms=now_ms())
    return info.value.reason


# -- external issuer: acceptance and claim checks ---------------------------------------


async def test_valid_rs256_token_is_accepted(verifier: JwtVerifier, key_a: RSAKey) -> None:
    principal = await verifier.verify(make_token(key_a), now_ms=now_ms())
    assert principal.tenant == "acme"
    assert principal.scopes == frozenset({Scope.TOPICS_READ.value, Scope.TOPICS_WRITE.value})
    assert principal.topics == ("orders*", "billing")
    assert principal.credential_id == f"jwt:{ISSUER}:user-7"
    assert principal.via == "jwt"
    assert principal.expires_at_ms is not None
    assert principal.expires_at_ms % 1000 == 0


async def test_valid_es256_token_with_scope_list_is_accepted(
    server: JwksServer, verifier: JwtVerifier, key_a: RSAKey
) -> None:
    ec = ec_key("e")
    server.state.keys = [public(key_a), public(ec)]
    token = make_token(ec, claims(scope=["topics:read", "nope"], topics=None), alg="ES256")
    principal = await verifier.verify(token, now_ms=now_ms())
    assert principal.scopes == frozenset({"topics:read"})
    assert principal.topics == ()


async def test_expired_token_is_refused(verifier: JwtVerifier, key_a: RSAKey) -> None:
    t = now_s()
    token = make_token(key_a, claims(iat=t - 600, nbf=t - 600, exp=t - 61))
    assert "expired" in await refused(verifier, token)


async def test_expiry_within_leeway_is_accepted(verifier: JwtVerifier, key_a: RSAKey) -> None:
    t = now_s()
    token = make_token(key_a, claims(iat=t - 600, nbf=t - 600, exp=t - 30))
    await verifier.verify(token, now_ms=now_ms())


async def test_missing_or_non_finite_exp_is_refused(verifier: JwtVerifier, key_a: RSAKey) -> None:
    await refused(verifier, make_token(key_a, claims(exp=None)))
    # json.loads accepts NaN; a NaN expiry must not mean "never expires".
    nan_payload = json.dumps(claims()).replace(str(claims()["exp"]), "NaN")
    token = jwt.encode(
        {"alg": "RS256", "typ": "at+jwt", "kid": "a"}, json.loads(nan_payload), key_a
    )
    await refused(verifier, token)


async def test_not_yet_valid_token_is_refused(verifier: JwtVerifier, key_a: RSAKey) -> None:
    t = now_s()
    token = make_token(key_a, claims(nbf=t + 120, iat=t, exp=t + 600))
    assert "not yet valid" in await refused(verifier, token)


async def test_wrong_issuer_is_refused(verifier: JwtVerifier, key_a: RSAKey) -> None:
    token = make_token(key_a, claims(iss="https://evil.example"))
    assert "issuer" in await refused(verifier, token)


async def test_wrong_audience_is_refused(verifier: JwtVerifier, key_a: RSAKey) -> None:
    await refused(verifier, make_token(key_a, claims(aud="someone-else")))
    accepted = make_token(key_a, claims(aud=["someone-else", AUDIENCE]))
    await verifier.verify(accepted, now_ms=now_ms())


async def test_token_signed_by_wrong_key_is_refused(verifier: JwtVerifier) -> None:
    impostor = rsa_key("a")  # same kid, different key
    assert "signature" in await refused(verifier, make_token(impostor))


async def test_alg_none_is_refused(verifier: JwtVerifier) -> None:
    header = {"alg": "none", "typ": "at+jwt", "kid": "a"}
    unsigned = f"{b64json(header)}.{b64json(claims())}."
    await refused(verifier, unsigned)
    with_junk_signature = unsigned + "c2ln"
    assert "algorithm" in await refused(verifier, with_junk_signature)


async def test_hs256_with_rsa_public_key_as_secret_is_refused(
    verifier: JwtVerifier, key_a: RSAKey
) -> None:
    """The classic key-confusion attack: HMAC keyed with the published public key."""
    secret = key_a.as_pem(private=False)
    token = hmac_token(secret, {"alg": "HS256", "typ": "at+jwt", "kid": "a"}, claims())
    assert "algorithm" in await refused(verifier, token)


async def test_algorithm_not_pinned_for_issuer_is_refused(
    server: JwksServer, key_a: RSAKey
) -> None:
    server.state.keys = [public(key_a)]
    only_es = IssuerConfig(ISSUER, server.url(), AUDIENCE, algorithms=("ES256",))
    v = JwtVerifier([only_es], signer=None)
    try:
        assert "algorithm" in await refused(v, make_token(key_a))
    finally:
        await v.close()


def test_symmetric_or_none_algorithms_cannot_be_configured() -> None:
    with pytest.raises(ValueError, match="algorithms"):
        IssuerConfig(ISSUER, "https://idp.example/jwks", AUDIENCE, algorithms=("HS256",))
    with pytest.raises(ValueError, match="algorithms"):
        IssuerConfig(ISSUER, "https://idp.example/jwks", AUDIENCE, algorithms=("none",))
    with pytest.raises(ValueError, match="leeway"):
        IssuerConfig(ISSUER, "https://idp.example/jwks", AUDIENCE, leeway_s=3600)


async def test_tampered_payload_is_refused(verifier: JwtVerifier, key_a: RSAKey) -> None:
    header, _, signature = make_token(key_a).split(".")
    forged = f"{header}.{b64json(claims(tenant='victim', scope='admin'))}.{signature}"
    assert "signature" in await refused(verifier, forged)


async def test_access_tokens_typed_jwt_at_jwt_or_untyped_are_accepted(
    verifier: JwtVerifier, key_a: RSAKey
) -> None:
    """Keycloak, Auth0, Azure AD and Google sign access tokens `typ: JWT`."""
    for typ in ("JWT", "jwt", "application/jwt", "at+jwt", "application/AT+JWT", None):
        principal = await verifier.verify(make_token(key_a, typ=typ), now_ms=now_ms())
        assert principal.tenant == "acme"
        assert principal.minted_from is None  # no key of this gateway behind it
    assert "access token" in await refused(verifier, make_token(key_a, typ="id_token+jwt"))


async def test_id_tokens_are_refused_whatever_their_typ(
    verifier: JwtVerifier, key_a: RSAKey
) -> None:
    """An ID token has a nonce and the web app for audience; either refuses it."""
    for typ in ("JWT", None):
        id_token = make_token(key_a, claims(nonce="n-0S6_WzA2Mj"), typ=typ)
        assert "access token" in await refused(verifier, id_token)
        for_an_app = make_token(key_a, claims(aud="web-app-client-id"), typ=typ)
        assert "not for this gateway" in await refused(verifier, for_an_app)


async def test_an_issuer_may_require_at_jwt(server: JwksServer, key_a: RSAKey) -> None:
    server.state.keys = [public(key_a)]
    strict = IssuerConfig(ISSUER, server.url(), AUDIENCE, require_at_jwt=True)
    v = JwtVerifier([strict], signer=None)
    try:
        await v.verify(make_token(key_a, typ="at+jwt"), now_ms=now_ms())
        for typ in ("JWT", None):
            assert "access token" in await refused(v, make_token(key_a, typ=typ))
    finally:
        await v.close()


async def test_crit_and_unencoded_payload_headers_are_refused(
    verifier: JwtVerifier, key_a: RSAKey
) -> None:
    for extra in ({"crit": ["exp"], "exp": 1}, {"crit": ["b64"], "b64": True}):
        header = {"alg": "RS256", "typ": "at+jwt", "kid": "a", **extra}
        assert "header" in await refused(verifier, rs256_raw(key_a, header, claims()))


async def test_bad_tenant_claims_are_refused(verifier: JwtVerifier, key_a: RSAKey) -> None:
    await refused(verifier, make_token(key_a, claims(tenant=None)))
    await refused(verifier, make_token(key_a, claims(tenant=["acme"])))
    await refused(verifier, make_token(key_a, claims(tenant="acme\n")))
    await refused(verifier, make_token(key_a, claims(topics="orders*")))
    await refused(verifier, make_token(key_a, claims(sub=None)))


async def test_oversized_and_malformed_tokens_are_refused(verifier: JwtVerifier) -> None:
    assert "oversized" in await refused(verifier, "a." + "b" * 9000 + ".c")
    await refused(verifier, "not.a.jwt")
    await refused(verifier, "..")
    await refused(verifier, f"{b64(b'[1]')}.{b64json(claims())}.c2ln")
    await refused(verifier, f"{b64(b'[' * 5000)}.{b64json(claims())}.c2ln")


async def test_reasons_do_not_echo_token_contents(verifier: JwtVerifier, key_a: RSAKey) -> None:
    token = make_token(key_a, claims(iss="https://secret-marker.example", sub="secret-marker"))
    assert "secret-marker" not in await refused(verifier, token)


# -- key fetching: kid rotation, rate limits, header-supplied keys ---------------------


async def test_unknown_kid_refetches_at_most_once_per_interval(
    server: JwksServer, verifier: JwtVerifier, key_a: RSAKey, clock: FakeClock
) -> None:
    await verifier.verify(make_token(key_a), now_ms=now_ms())
    assert server.state.hit_count() == 1

    key_b = rsa_key("b")
    server.state.keys = [public(key_a), public(key_b)]  # the issuer rotates
    clock.advance(31)
    principal = await verifier.verify(make_token(key_b), now_ms=now_ms())
    assert principal.tenant == "acme"
    assert server.state.hit_count() == 2

    # A second unknown kid within the refetch interval does not hit the issuer.
    assert "unknown key id" in await refused(verifier, make_token(rsa_key("c")))
    assert "unknown key id" in await refused(verifier, make_token(rsa_key("d")))
    assert server.state.hit_count() == 2

    clock.advance(31)
    await refused(verifier, make_token(rsa_key("c")))
    assert server.state.hit_count() == 3
    # Known keys keep working without a fetch.
    await verifier.verify(make_token(key_a), now_ms=now_ms())
    assert server.state.hit_count() == 3


async def test_keys_are_cached_for_ttl(
    server: JwksServer, verifier: JwtVerifier, key_a: RSAKey, clock: FakeClock
) -> None:
    for _ in range(5):
        await verifier.verify(make_token(key_a), now_ms=now_ms())
    assert server.state.hit_count() == 1
    clock.advance(301)
    await verifier.verify(make_token(key_a), now_ms=now_ms())
    assert server.state.hit_count() == 2


async def test_concurrent_callers_share_one_fetch(
    server: JwksServer, verifier: JwtVerifier, key_a: RSAKey
) -> None:
    server.state.delay_s = 0.1
    token = make_token(key_a)
    results = await asyncio.gather(*(verifier.verify(token, now_ms=now_ms()) for _ in range(10)))
    assert len(results) == 10
    assert server.state.hit_count() == 1


async def test_kid_may_be_omitted_only_with_a_single_key(
    server: JwksServer, verifier: JwtVerifier, key_a: RSAKey, clock: FakeClock
) -> None:
    await verifier.verify(make_token(key_a, kid=None), now_ms=now_ms())
    server.state.keys = [public(key_a), public(rsa_key("b"))]
    clock.advance(301)
    assert "key id" in await refused(verifier, make_token(key_a, kid=None))


async def test_jku_and_embedded_jwk_headers_are_ignored(
    server: JwksServer, verifier: JwtVerifier, key_a: RSAKey
) -> None:
    attacker = rsa_key("evil")
    evil_url = server.url("/attacker.json")
    # Valid token with a jku: accepted, but the jku is never fetched.
    await verifier.verify(make_token(key_a, jku=evil_url), now_ms=now_ms())
    # Attacker-signed token pointing at the attacker's key set: refused, not fetched.
    assert "unknown key id" in await refused(verifier, make_token(attacker, jku=evil_url))
    embedded = make_token(attacker, kid="a", jwk=public(attacker))
    assert "signature" in await refused(verifier, embedded)
    assert server.state.hit_count("/attacker.json") == 0
    assert server.state.hit_count() == 1


async def test_symmetric_keys_in_jwks_are_never_used(server: JwksServer, clock: FakeClock) -> None:
    secret = b"s" * 32
    server.state.keys = [{"kty": "oct", "kid": "h", "k": b64(secret)}]
    v = JwtVerifier(
        [IssuerConfig(ISSUER, server.url(), AUDIENCE, algorithms=("RS256",))],
        signer=None,
        jwks_options={"clock": clock},
    )
    try:
        token = hmac_token(secret, {"alg": "HS256", "typ": "at+jwt", "kid": "h"}, claims())
        await refused(v, token)
    finally:
        await v.close()


# -- JWKS failures ---------------------------------------------------------------------


async def test_outage_serves_stale_keys_then_refuses(
    server: JwksServer, verifier: JwtVerifier, key_a: RSAKey, clock: FakeClock
) -> None:
    await verifier.verify(make_token(key_a), now_ms=now_ms())
    server.state.status = 500
    clock.advance(301)  # the set expired; the refetch fails
    await verifier.verify(make_token(key_a), now_ms=now_ms())
    assert server.state.hit_count() == 2
    # Failed fetches are rate-limited too: a dead issuer is not asked per request.
    await verifier.verify(make_token(key_a), now_ms=now_ms())
    assert server.state.hit_count() == 2

    clock.advance(3600 - 2)  # still within max_stale_s past expiry
    await verifier.verify(make_token(key_a), now_ms=now_ms())
    clock.advance(3)  # past it
    assert "unavailable" in await refused(verifier, make_token(key_a))

    server.state.status = 200  # the issuer recovers
    clock.advance(31)
    await verifier.verify(make_token(key_a), now_ms=now_ms())


async def test_issuer_down_from_the_start_is_refused(
    server: JwksServer, verifier: JwtVerifier, key_a: RSAKey
) -> None:
    server.state.status = 503
    assert "unavailable" in await refused(verifier, make_token(key_a))


async def test_slow_jwks_response_is_a_failed_fetch(
    server: JwksServer, key_a: RSAKey, clock: FakeClock
) -> None:
    server.state.keys = [public(key_a)]
    server.state.delay_s = 1.0
    v = JwtVerifier(
        [IssuerConfig(ISSUER, server.url(), AUDIENCE)],
        signer=None,
        jwks_options={"clock": clock, "timeout_s": 0.2},
    )
    try:
        started = time.monotonic()
        assert "unavailable" in await refused(v, make_token(key_a))
        assert time.monotonic() - started < 0.9
    finally:
        await v.close()


@pytest.mark.parametrize("send_length", [True, False])
async def test_oversized_jwks_response_is_a_failed_fetch(
    server: JwksServer, key_a: RSAKey, clock: FakeClock, send_length: bool
) -> None:
    server.state.keys = [public(key_a)]
    server.state.pad_bytes = 70_000
    server.state.send_length = send_length
    v = JwtVerifier(
        [IssuerConfig(ISSUER, server.url(), AUDIENCE)],
        signer=None,
        jwks_options={"clock": clock, "max_bytes": 65536},
    )
    try:
        assert "unavailable" in await refused(v, make_token(key_a))
        server.state.pad_bytes = 1000
        clock.advance(31)
        await v.verify(make_token(key_a), now_ms=now_ms())
    finally:
        await v.close()


def test_only_http_urls_are_configurable() -> None:
    from tenants.jwks import JwksCache

    for url in ("file:///etc/passwd", "ftp://idp.example/jwks", "/jwks.json", "http://"):
        with pytest.raises(ValueError, match="http"):
            JwksCache(url)


# -- the gateway's own signer ----------------------------------------------------------


@pytest.fixture
def signer(tmp_path: Path) -> TokenSigner:
    return TokenSigner.load_or_create(tmp_path / "keys" / "signing.json")


def own_token(signer: TokenSigner, **overrides: Any) -> str:
    args: dict[str, Any] = {
        "tenant": "acme",
        "key_id": "key_1",
        "subject": "tg_key_1",
        "scopes": ["topics:read", "groups:read"],
        "topics": ["orders*"],
        "ttl_s": 600,
        "now_s": now_s(),
    }
    args.update(overrides)
    return signer.sign(**args)


async def test_own_token_round_trip(signer: TokenSigner) -> None:
    token = own_token(signer)
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {"alg": "ES256", "typ": "at+jwt", "kid": signer.current_kid}
    payload = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert payload["iss"] == "tidegate"
    assert payload["aud"] == "tidegate"
    assert payload["exp"] - payload["iat"] == 600
    assert payload["jti"]

    v = JwtVerifier([], signer=signer)
    principal = await v.verify(token, now_ms=now_ms())
    assert principal.tenant == "acme"
    assert principal.credential_id == "jwt:tidegate:tg_key_1"
    assert principal.scopes == frozenset({"topics:read", "groups:read"})
    assert principal.topics == ("orders*",)
    assert principal.expires_at_ms == payload["exp"] * 1000
    assert payload["key_id"] == "key_1"
    assert principal.minted_from == "key_1"  # the directory holds the token to that key
    await v.close()


async def test_own_token_without_its_key_is_refused(signer: TokenSigner) -> None:
    """A token of this gateway that names no key could not be revoked with one."""
    v = JwtVerifier([], signer=signer)
    _, payload, _ = own_token(signer).split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=="))
    for key_id in (None, "", 7):
        changed = {**body, "key_id": key_id} if key_id is not None else body.copy()
        if key_id is None:
            del changed["key_id"]
        header = {"alg": "ES256", "typ": "at+jwt", "kid": signer.current_kid}
        signing_key = signer._keys[-1].key
        token = jwt.encode(header, changed, signing_key, algorithms=["ES256"])
        assert "names no key" in await refused(v, token)


async def test_own_token_expires(signer: TokenSigner) -> None:
    v = JwtVerifier([], signer=signer)
    token = own_token(signer, ttl_s=60, now_s=now_s() - 200)
    assert "expired" in await refused(v, token)


def test_own_ttl_cannot_outlive_key_publication(signer: TokenSigner) -> None:
    with pytest.raises(ValueError, match="ttl_s"):
        own_token(signer, ttl_s=int(signer.keep_s) + 1)


async def test_rotation_keeps_old_kid_published_and_verifying(
    signer: TokenSigner, tmp_path: Path
) -> None:
    old_kid = signer.current_kid
    old_token = own_token(signer)
    new_kid = signer.rotate()
    assert new_kid != old_kid
    assert signer.kids == (old_kid, new_kid)
    assert {k["kid"] for k in signer.jwks()["keys"]} == {old_kid, new_kid}

    reloaded = TokenSigner.load_or_create(signer.path)
    assert reloaded.kids == (old_kid, new_kid)
    v = JwtVerifier([], signer=reloaded)
    await v.verify(old_token, now_ms=now_ms())
    new_token = own_token(reloaded)
    assert json.loads(base64.urlsafe_b64decode(new_token.split(".")[0] + "=="))["kid"] == new_kid
    await v.verify(new_token, now_ms=now_ms())


def test_load_rotates_stale_key_and_prunes_retired_ones(tmp_path: Path) -> None:
    path = tmp_path / "signing.json"
    t0 = 1_700_000_000.0
    first = TokenSigner.load_or_create(path, rotate_after_s=100, keep_s=50, now_s=t0)
    assert len(first.kids) == 1
    same = TokenSigner.load_or_create(path, rotate_after_s=100, keep_s=50, now_s=t0 + 99)
    assert same.kids == first.kids
    rotated = TokenSigner.load_or_create(path, rotate_after_s=100, keep_s=50, now_s=t0 + 100)
    assert rotated.kids[0] == first.current_kid
    assert len(rotated.kids) == 2
    pruned = TokenSigner.load_or_create(path, rotate_after_s=100, keep_s=50, now_s=t0 + 151)
    assert pruned.kids == (rotated.current_kid,)


def test_key_file_is_private_and_jwks_is_public(signer: TokenSigner) -> None:
    mode = stat.S_IMODE(signer.path.stat().st_mode)
    assert mode == 0o600
    stored = json.loads(signer.path.read_text())
    assert all("d" in entry["jwk"] for entry in stored["keys"])
    signer.rotate()
    assert stat.S_IMODE(signer.path.stat().st_mode) == 0o600
    for jwk in signer.jwks()["keys"]:
        assert "d" not in jwk
        assert jwk["kty"] == "EC"
        assert jwk["crv"] == "P-256"
    assert '"d"' not in json.dumps(signer.jwks())
    # No temp files left behind by the atomic writes.
    assert sorted(p.name for p in signer.path.parent.iterdir()) == [signer.path.name]


def test_damaged_key_file_refuses_to_load(tmp_path: Path) -> None:
    path = tmp_path / "signing.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="signing key file"):
        TokenSigner.load_or_create(path)


async def test_own_token_with_alg_changed_to_hs256_is_refused(signer: TokenSigner) -> None:
    v = JwtVerifier([], signer=signer)
    token = own_token(signer)
    _, payload, _ = token.split(".")
    claims_ = json.loads(base64.urlsafe_b64decode(payload + "=="))
    public_pem = ECKey.import_key(signer.jwks()["keys"][0]).as_pem(private=False)
    forged = hmac_token(
        public_pem, {"alg": "HS256", "typ": "at+jwt", "kid": signer.current_kid}, claims_
    )
    assert "algorithm" in await refused(v, forged)
    # Header alg swapped without re-signing.
    header = {"alg": "HS256", "typ": "at+jwt", "kid": signer.current_kid}
    assert "algorithm" in await refused(v, f"{b64json(header)}.{payload}.{token.split('.')[2]}")


async def test_own_token_requires_at_jwt_typ(signer: TokenSigner) -> None:
    v = JwtVerifier([], signer=signer)
    token = own_token(signer)
    _, payload, signature = token.split(".")
    for typ in (None, "JWT"):
        header: dict[str, Any] = {"alg": "ES256", "kid": signer.current_kid}
        if typ is not None:
            header["typ"] = typ
        assert "access token" in await refused(v, f"{b64json(header)}.{payload}.{signature}")


async def test_external_key_cannot_sign_for_own_issuer(
    server: JwksServer, key_a: RSAKey, signer: TokenSigner
) -> None:
    """The unverified iss picks the issuer; only that issuer's keys may verify."""
    server.state.keys = [public(key_a)]
    v = JwtVerifier([IssuerConfig(ISSUER, server.url(), AUDIENCE)], signer=signer)
    try:
        forged = make_token(key_a, claims(iss="tidegate", aud="tidegate"), alg="RS256")
        assert "algorithm" in await refused(v, forged)
        attacker_ec = ec_key(signer.current_kid)
        forged_ec = make_token(attacker_ec, claims(iss="tidegate", aud="tidegate"), alg="ES256")
        assert "signature" in await refused(v, forged_ec)
        assert server.state.hit_count() == 0
        await v.verify(own_token(signer), now_ms=now_ms())
        await v.verify(make_token(key_a), now_ms=now_ms())
    finally:
        await v.close()


def test_own_issuer_cannot_be_configured_twice(signer: TokenSigner) -> None:
    with pytest.raises(ValueError, match="twice"):
        JwtVerifier([IssuerConfig("tidegate", "https://x.example/jwks", "tidegate")], signer=signer)


# -- static keys and the operator scope --------------------------------------------------


async def test_static_keys_verify_without_any_fetch(key_a: RSAKey) -> None:
    other = rsa_key("b")
    verifier = JwtVerifier(
        [
            IssuerConfig(
                issuer=ISSUER, jwks_url=None, jwks={"keys": [public(key_a)]}, audience=AUDIENCE
            )
        ],
        signer=None,
    )
    try:
        principal = await verifier.verify(make_token(key_a), now_ms=now_ms())
        assert principal.tenant == "acme"
        assert await refused(verifier, make_token(other)) == "unknown key id"
    finally:
        await verifier.close()


def test_an_issuer_needs_exactly_one_key_source(key_a: RSAKey) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        IssuerConfig(issuer=ISSUER, jwks_url=None, audience=AUDIENCE)
    with pytest.raises(ValueError, match="exactly one"):
        IssuerConfig(
            issuer=ISSUER,
            jwks_url="https://idp.example/jwks",
            jwks={"keys": [public(key_a)]},
            audience=AUDIENCE,
        )


async def test_an_external_issuer_never_grants_the_operator_scope(
    verifier: JwtVerifier, key_a: RSAKey
) -> None:
    token = make_token(key_a, claims(scope="admin topics:read"))
    principal = await verifier.verify(token, now_ms=now_ms())
    assert principal.scopes == frozenset({Scope.TOPICS_READ.value})


def test_the_signer_says_when_its_key_is_due(tmp_path: Path) -> None:
    signer = TokenSigner.load_or_create(
        tmp_path / "keys.json", rotate_after_s=100, keep_s=50, now_s=1000
    )
    assert not signer.needs_rotation(1099)
    assert signer.needs_rotation(1100)
    first = signer.current_kid
    signer.rotate(now_s=1100)
    assert signer.current_kid != first
    assert first in signer.kids  # still published for the tokens it signed
    assert not signer.needs_rotation(1150)

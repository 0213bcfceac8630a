"""What authlib's server classes ask about: API keys as clients, verified tokens as tokens.

authlib calls these synchronously, so everything that needs the store is
loaded before it runs (`KeyClient.load`, `IssuedToken` from a principal the
directory verified); checking a presented secret is then a constant-time HMAC
comparison on data already in hand. Each object also records what happened to
it (a failed secret, a suspended tenant), which the routes settle afterwards:
failures are charged to the client id's throttle, successes to the tenant's
request rate.
"""

from __future__ import annotations

from authlib.oauth2.rfc6749 import ClientMixin, TokenMixin

from tenants.directory import DEFAULT_TENANT, LoadedKey, TenantDirectory
from tenants.errors import TenantSuspended, Unauthenticated
from tenants.keys import BOOTSTRAP_KEY_ID, KEY_ID
from tenants.principal import Principal, Scope

GRANT_TYPE = "client_credentials"
AUTH_METHODS = ("client_secret_basic", "client_secret_post")


def is_key_id(client_id: str) -> bool:
    """Whether `client_id` could name an API key (anything else names no client)."""
    return client_id == BOOTSTRAP_KEY_ID or KEY_ID.fullmatch(client_id) is not None


class KeyClient(ClientMixin):  # type: ignore[misc]  # authlib is untyped
    """An API key as an OAuth2 confidential client: id = the key's id, secret = the key."""

    def __init__(
        self, client_id: str, loaded: LoadedKey | None, directory: TenantDirectory, now_ms: int
    ) -> None:
        self.client_id = client_id
        self._loaded = loaded
        self._directory = directory
        self._now_ms = now_ms
        self.principal: Principal | None = None  # set once the secret checks out
        self.failed = False  # a secret was presented and did not check out
        self.suspended = False  # the right secret, of a suspended tenant's key
        self.granted_scopes: tuple[str, ...] = ()  # set by the grant

    @classmethod
    async def load(cls, client_id: str, directory: TenantDirectory, now_ms: int) -> KeyClient:
        """The client `client_id` names, its key loaded if there is one. An unknown id
        still gets a client, one whose every secret fails: authlib then answers it
        exactly as a wrong secret, and the failure is counted the same way."""
        loaded = await directory.load_key(client_id) if is_key_id(client_id) else None
        return cls(client_id, loaded, directory, now_ms)

    @property
    def loaded(self) -> LoadedKey | None:
        return self._loaded

    @property
    def is_operator(self) -> bool:
        return (
            self.principal is not None
            and self.principal.tenant == DEFAULT_TENANT
            and Scope.ADMIN.value in self.principal.scopes
        )

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None  # no authorization endpoint, no redirects

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in AUTH_METHODS

    def check_grant_type(self, grant_type: str) -> bool:
        """Client credentials only, and not for a suspended tenant's key."""
        return grant_type == GRANT_TYPE and not self.suspended

    def check_client_secret(self, client_secret: str) -> bool:
        if self._loaded is None:
            self.failed = True
            return False
        try:
            self.principal = self._directory.check_loaded_key(
                self._loaded, client_secret, now_ms=self._now_ms
            )
        except TenantSuspended:
            self.suspended = True  # authenticated; refused what it asks (unauthorized_client)
        except Unauthenticated:
            self.failed = True
            return False
        return True


class IssuedToken(TokenMixin):  # type: ignore[misc]  # authlib is untyped
    """A token this gateway minted, verified by the directory just now (signature, expiry,
    its key standing, not revoked): what introspection shows and revocation revokes."""

    def __init__(self, principal: Principal, now_ms: int) -> None:
        assert principal.minted_from is not None
        self.principal = principal
        self.key_id: str = principal.minted_from
        self._now_ms = now_ms

    def visible_to(self, client: KeyClient) -> bool:
        """Whether `client` may learn anything of this token: the operator, or a key of
        the token's own tenant. To every other client the token does not exist."""
        if client.principal is None:
            return False
        return client.is_operator or client.principal.tenant == self.principal.tenant

    def check_client(self, client: KeyClient) -> bool:
        """Issued to `client` (minted from that key), or `client` is the operator."""
        if client.principal is None:
            return False
        return client.is_operator or client.principal.credential_id == self.key_id

    def get_scope(self) -> str:
        return " ".join(sorted(self.principal.scopes))

    def get_expires_in(self) -> int:
        expires = self.principal.expires_at_ms or self._now_ms
        return max(0, (expires - self._now_ms) // 1000)

    def is_expired(self) -> bool:
        expires = self.principal.expires_at_ms
        return expires is not None and expires <= self._now_ms

    def is_revoked(self) -> bool:
        return False  # the directory refuses revoked tokens before one is built

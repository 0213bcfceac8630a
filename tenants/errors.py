"""The tenants layer's exception hierarchy: one base, subclasses carrying their numbers.

The gateway maps each class to a problem type in its single error table; this
layer knows nothing about HTTP status codes.
"""

from __future__ import annotations


class TenantError(Exception):
    """Base of every error the tenants layer raises on purpose."""


class Unauthenticated(TenantError):
    """No credential, or one that does not verify. The reason is safe to show."""

    def __init__(self, reason: str = "a valid credential is required") -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidToken(Unauthenticated):
    """A JWT that is malformed, expired, from an unknown issuer or badly signed."""


class Forbidden(TenantError):
    """A verified caller without the scope or topic pattern the action needs."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TenantSuspended(TenantError):
    def __init__(self, name: str) -> None:
        super().__init__(f"tenant {name!r} is suspended")
        self.name = name


class TenantNotFound(TenantError):
    def __init__(self, name: str) -> None:
        super().__init__(f"tenant {name!r} does not exist")
        self.name = name


class TenantExists(TenantError):
    def __init__(self, name: str) -> None:
        super().__init__(f"tenant {name!r} already exists")
        self.name = name


class InvalidTenantName(TenantError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"invalid tenant name {name!r}: use 1-63 of a-z, 0-9, '_' and '-', "
            "starting with a letter or digit"
        )
        self.name = name


class KeyNotFound(TenantError):
    def __init__(self, key_id: str) -> None:
        super().__init__(f"key {key_id!r} does not exist")
        self.key_id = key_id


class InvalidScopes(TenantError):
    def __init__(self, scopes: list[str]) -> None:
        super().__init__(f"unknown scopes: {', '.join(sorted(scopes))}")
        self.scopes = scopes


class OperatorScopeOnly(InvalidScopes):
    """The operator scope asked for a key of a tenant other than the operator's."""

    def __init__(self, tenant: str, operator_tenant: str) -> None:
        TenantError.__init__(
            self,
            f"the operator scope 'admin' is only for keys of tenant {operator_tenant!r}, "
            f"not {tenant!r}",
        )
        self.scopes = ["admin"]


class ScopesNotHeld(TenantError):
    """Scopes asked of a token that the credential it is minted from does not hold."""

    def __init__(self, scopes: list[str]) -> None:
        super().__init__(f"the key does not hold the scopes {sorted(set(scopes))}")
        self.scopes = scopes


class ClientAuthThrottled(TenantError):
    """Too many failed authentications as one client id: refused unchecked for now."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(
            f"too many failed authentications for this client id; retry in {retry_after_s:.3f} s"
        )
        self.retry_after_s = retry_after_s


class QuotaExceeded(TenantError):
    """A rate limit refused the request; nothing was done. Retry after `retry_after_s`."""

    def __init__(
        self, limit: str, retry_after_s: float, limit_value: float, remaining: float, reset_s: float
    ) -> None:
        super().__init__(f"{limit} quota exceeded; retry after {retry_after_s:.3f} s")
        self.limit = limit
        self.retry_after_s = retry_after_s
        self.limit_value = limit_value
        self.remaining = remaining
        self.reset_s = reset_s


class LimiterUnavailable(TenantError):
    """The shared rate limiter (Redis) did not answer; the request was not admitted."""

    def __init__(self, reason: str, retry_after_s: int = 1) -> None:
        super().__init__(f"the rate limiter is unavailable: {reason}")
        self.retry_after_s = retry_after_s


class LimitReached(TenantError):
    """A count or storage limit (topics, partitions, bytes, connections) is used up."""

    def __init__(self, limit: str, current: int, allowed: int) -> None:
        super().__init__(f"{limit} limit reached: {current} in use, the plan allows {allowed}")
        self.limit = limit
        self.current = current
        self.allowed = allowed


class UnknownPlan(TenantError):
    def __init__(self, plan: str, plans: tuple[str, ...]) -> None:
        super().__init__(f"unknown plan {plan!r}; plans: {', '.join(plans)}")
        self.plan = plan
        self.plans = plans


class InvalidQuota(TenantError):
    """A plan or an override names an unknown limit or gives it a value it cannot take."""

    def __init__(self, reason: str, limit: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.limit = limit


class DirectoryFull(TenantError):
    """The tenant store found no space left on its disk; nothing was changed."""

    retry_after_s: int = 5

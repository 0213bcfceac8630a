"""Failed client authentications, counted and throttled per client id (credential stuffing).

An OAuth2 client authenticates with its id (an API key's id, which is public:
tokens name it) and its secret (the key). Guessing secrets for one id must not
run at full speed, so every failed attempt is charged to that id's bucket in the
gateway's `RateLimiter` (GCRA: in process, or in Redis when gateways share one,
so all of them count together), and an attempt is refused unchecked while the
bucket holds more than `burst` failures: 429 with `Retry-After`, whether the
secret it brings is right or not, so the answer never confirms a guess early.
The bucket drains at `per_second`, so after a burst the id gets one attempt
every `1 / per_second` seconds; successes cost nothing. The arithmetic is the
pure `tenants.ratelimit.gcra` (time passed in, property-tested there).
"""

from __future__ import annotations

from tenants.errors import ClientAuthThrottled
from tenants.ratelimit import RateLimiter

# `~` never appears in a tenant name, so no quota bucket (`<tenant>:<limit>`) can be this.
BUCKET_PREFIX = "~client-auth:"


class ClientAuthThrottle:
    """Counts failures per client id and refuses ids that have failed too often."""

    def __init__(self, limiter: RateLimiter, *, burst: int = 10, per_second: float = 0.5) -> None:
        if burst < 1 or not per_second > 0:
            raise ValueError("burst must be at least 1 and per_second positive")
        self._limiter = limiter
        self.burst = burst
        self.per_second = per_second

    async def admit(self, client_id: str) -> None:
        """Before a client's secret is checked: ClientAuthThrottled while its id's
        failures exceed the burst (nothing is charged)."""
        decision = await self._limiter.acquire(
            BUCKET_PREFIX + client_id, rate=self.per_second, burst=self.burst, cost=0.0
        )
        if not decision.allowed:
            raise ClientAuthThrottled(decision.retry_after_s)

    async def failed(self, client_id: str) -> None:
        """Charge one failed authentication to the id (always; it may go into debt)."""
        await self._limiter.acquire(
            BUCKET_PREFIX + client_id,
            rate=self.per_second,
            burst=self.burst,
            cost=1.0,
            force=True,
        )

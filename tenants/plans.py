"""Plans and limits: what a tenant may use, as plain data.

A plan is a named `Limits` value; a tenant has one plan plus a small JSON dict
of overrides stored with it (`TenantRecord.overrides`). The effective limits
are the plan's values with the overrides laid on top, so an operator can raise
or lower one figure for one tenant without inventing a plan for it.

`None` means unlimited everywhere: in `Limits`, in overrides (JSON `null`) and
in configured plans. Rates are floats (units per second); counts and sizes are
ints, because half a topic or half a byte is meaningless and silently rounding
an operator's `10.5` would hide a mistake.

Everything that comes from outside (the admin API, the store, the
configuration file) goes through one validator, `_parse_value`, so the same
rules hold wherever a limit is written: known names only, non-negative finite
numbers, no booleans (in Python `True` is an int and would pass as `1`).

This module holds data and validation only; enforcement lives in
`tenants.quotas` and `tenants.ratelimit`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from tenants.errors import InvalidQuota

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True, slots=True)
class Limits:
    """A tenant's limits. Every field is `None` when unlimited."""

    requests_per_second: float | None = None
    produce_bytes_per_second: float | None = None
    consume_bytes_per_second: float | None = None
    max_topics: int | None = None
    max_partitions: int | None = None
    """Total partitions over all of the tenant's topics."""
    max_storage_bytes: int | None = None
    max_connections: int | None = None
    """Concurrent long-polls, WebSockets and SSE feeds."""
    max_record_bytes: int | None = None
    max_retention_ms: int | None = None


LIMIT_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Limits))

# Rates are floats; every other limit is a whole count of something.
_RATE_NAMES = frozenset(
    ("requests_per_second", "produce_bytes_per_second", "consume_bytes_per_second")
)

DEFAULT_PLANS: Mapping[str, Limits] = MappingProxyType(
    {
        "free": Limits(
            requests_per_second=20.0,
            produce_bytes_per_second=float(256 * KiB),
            consume_bytes_per_second=float(1 * MiB),
            max_topics=10,
            max_partitions=30,
            max_storage_bytes=1 * GiB,
            max_connections=20,
            max_record_bytes=1 * MiB,
            max_retention_ms=7 * DAY_MS,
        ),
        "standard": Limits(
            requests_per_second=500.0,
            produce_bytes_per_second=float(8 * MiB),
            consume_bytes_per_second=float(32 * MiB),
            max_topics=200,
            max_partitions=1000,
            max_storage_bytes=100 * GiB,
            max_connections=500,
            max_record_bytes=4 * MiB,
            max_retention_ms=30 * DAY_MS,
        ),
        "unlimited": Limits(),
    }
)


def _parse_value(name: str, value: object) -> float | int | None:
    """One limit's value, checked: None, or a non-negative finite number of the right kind."""
    if name not in LIMIT_NAMES:
        raise InvalidQuota(f"unknown limit {name!r}; limits: {', '.join(LIMIT_NAMES)}", limit=name)
    if value is None:
        return None
    # bool is a subclass of int: `true` must not quietly mean a limit of 1.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidQuota(f"{name} must be a number or null, not {value!r}", limit=name)
    if name in _RATE_NAMES:
        rate = float(value)
        if not math.isfinite(rate) or rate < 0:
            raise InvalidQuota(
                f"{name} must be a non-negative finite number (null for unlimited), not {value!r}",
                limit=name,
            )
        return rate
    if not isinstance(value, int):
        raise InvalidQuota(f"{name} must be a whole number, not {value!r}", limit=name)
    if value < 0:
        raise InvalidQuota(f"{name} must not be negative, not {value!r}", limit=name)
    return value


def parse_overrides(raw: Mapping[str, object]) -> dict[str, float | int | None]:
    """Validate a tenant's overrides; the result is safe to store and to apply.

    Raises InvalidQuota naming the first bad limit. `None` (JSON null) is kept:
    it means "unlimited", which is different from "absent" ("as the plan says").
    """
    if not isinstance(raw, Mapping):
        raise InvalidQuota("overrides must be an object of limit names to values")
    parsed: dict[str, float | int | None] = {}
    for name, value in raw.items():
        if not isinstance(name, str):
            raise InvalidQuota(f"limit names are strings, not {name!r}")
        parsed[name] = _parse_value(name, value)
    return parsed


def effective_limits(plan: Limits, overrides: Mapping[str, object]) -> Limits:
    """The plan's limits with the overrides applied (an override always wins).

    The overrides are validated again: they normally come from the store,
    where they were validated on the way in, but a hand-edited database must
    not turn into a crash or a silently wrong limit deep in a request.
    """
    parsed = parse_overrides(overrides)
    if not parsed:
        return plan
    return dataclasses.replace(plan, **parsed)  # type: ignore[arg-type]


def limits_json(limits: Limits) -> dict[str, float | int | None]:
    """The limits as a JSON-ready dict, every name present, `None` for unlimited."""
    return {name: getattr(limits, name) for name in LIMIT_NAMES}


def plans_from_config(raw: Mapping[str, Mapping[str, object]] | None) -> dict[str, Limits]:
    """The default plans, with the configured ones added or replacing them.

    A configured plan that shares a default plan's name starts from that
    default and changes only the limits it names, so `{"free": {"max_topics":
    5}}` does what it reads like. A new plan must name every limit (null for
    unlimited): a forgotten field must not silently become "unlimited".
    """
    plans = dict(DEFAULT_PLANS)
    if not raw:
        return plans
    for plan_name, values in raw.items():
        if not isinstance(plan_name, str) or not plan_name:
            raise InvalidQuota(f"plan names are non-empty strings, not {plan_name!r}")
        if not isinstance(values, Mapping):
            raise InvalidQuota(f"plan {plan_name!r} must be an object of limit names to values")
        try:
            parsed = parse_overrides(values)
        except InvalidQuota as exc:
            raise InvalidQuota(f"plan {plan_name!r}: {exc.reason}", limit=exc.limit) from None
        base = DEFAULT_PLANS.get(plan_name)
        if base is None:
            missing = [n for n in LIMIT_NAMES if n not in parsed]
            if missing:
                raise InvalidQuota(
                    f"plan {plan_name!r} must set every limit (null for unlimited); "
                    f"missing: {', '.join(missing)}",
                    limit=missing[0],
                )
            base = Limits()
        plans[plan_name] = dataclasses.replace(base, **parsed)  # type: ignore[arg-type]
    return plans

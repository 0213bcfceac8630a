"""Plans and overrides: validation, merging, null as unlimited, configured plans."""

from __future__ import annotations

import dataclasses

import pytest

from tenants.errors import InvalidQuota
from tenants.plans import (
    DEFAULT_PLANS,
    LIMIT_NAMES,
    Limits,
    effective_limits,
    limits_json,
    parse_overrides,
    plans_from_config,
)

FREE = DEFAULT_PLANS["free"]


def test_limit_names_are_the_fields() -> None:
    assert tuple(f.name for f in dataclasses.fields(Limits)) == LIMIT_NAMES
    assert len(LIMIT_NAMES) == 9


def test_default_plans() -> None:
    assert set(DEFAULT_PLANS) == {"free", "standard", "unlimited"}
    assert all(getattr(DEFAULT_PLANS["unlimited"], n) is None for n in LIMIT_NAMES)
    standard = DEFAULT_PLANS["standard"]
    for name in LIMIT_NAMES:
        small, large = getattr(FREE, name), getattr(standard, name)
        assert small is not None
        assert large is not None
        assert large > small, name
    assert FREE.requests_per_second == 20.0
    assert FREE.max_record_bytes == 1024 * 1024
    assert FREE.max_retention_ms == 7 * 24 * 3600 * 1000


def test_default_plans_cannot_be_changed() -> None:
    with pytest.raises(TypeError):
        DEFAULT_PLANS["free"] = Limits()  # type: ignore[index]


def test_parse_overrides_accepts_and_normalises() -> None:
    parsed = parse_overrides(
        {"requests_per_second": 5, "max_topics": 3, "max_storage_bytes": None, "max_partitions": 0}
    )
    assert parsed == {
        "requests_per_second": 5.0,
        "max_topics": 3,
        "max_storage_bytes": None,
        "max_partitions": 0,
    }
    assert isinstance(parsed["requests_per_second"], float)
    assert parse_overrides({}) == {}
    assert parse_overrides({"produce_bytes_per_second": 1.5}) == {"produce_bytes_per_second": 1.5}


def test_unknown_limit_is_named() -> None:
    with pytest.raises(InvalidQuota, match="max_topicz") as info:
        parse_overrides({"max_topicz": 3})
    assert info.value.limit == "max_topicz"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("max_topics", -1, "negative"),
        ("requests_per_second", -0.5, "non-negative"),
        ("max_topics", True, "number or null"),
        ("requests_per_second", False, "number or null"),
        ("max_topics", 10.0, "whole number"),
        ("max_partitions", 2.5, "whole number"),
        ("max_connections", "10", "number or null"),
        ("max_record_bytes", [1], "number or null"),
        ("requests_per_second", float("inf"), "finite"),
        ("consume_bytes_per_second", float("nan"), "finite"),
    ],
)
def test_bad_values_are_refused(name: str, value: object, message: str) -> None:
    with pytest.raises(InvalidQuota, match=message) as info:
        parse_overrides({name: value})
    assert info.value.limit == name
    assert name in str(info.value)


def test_overrides_must_be_a_mapping() -> None:
    with pytest.raises(InvalidQuota, match="object"):
        parse_overrides([("max_topics", 1)])  # type: ignore[arg-type]


def test_effective_limits_overrides_win() -> None:
    limits = effective_limits(FREE, {"max_topics": 50, "requests_per_second": 1})
    assert limits.max_topics == 50
    assert limits.requests_per_second == 1.0
    assert limits.max_partitions == FREE.max_partitions
    assert limits.produce_bytes_per_second == FREE.produce_bytes_per_second


def test_null_override_means_unlimited() -> None:
    limits = effective_limits(FREE, {"max_storage_bytes": None, "requests_per_second": None})
    assert limits.max_storage_bytes is None
    assert limits.requests_per_second is None
    assert limits.max_topics == FREE.max_topics


def test_no_overrides_is_the_plan() -> None:
    assert effective_limits(FREE, {}) is FREE


def test_override_can_limit_an_unlimited_plan() -> None:
    limits = effective_limits(DEFAULT_PLANS["unlimited"], {"max_connections": 2})
    assert limits.max_connections == 2
    assert limits.max_topics is None


def test_bad_stored_overrides_are_refused() -> None:
    with pytest.raises(InvalidQuota):
        effective_limits(FREE, {"max_topics": "lots"})


def test_limits_json() -> None:
    body = limits_json(DEFAULT_PLANS["unlimited"])
    assert list(body) == list(LIMIT_NAMES)
    assert set(body.values()) == {None}
    assert limits_json(FREE)["max_topics"] == 10


def test_plans_from_config_defaults() -> None:
    assert plans_from_config(None) == dict(DEFAULT_PLANS)
    assert plans_from_config({}) == dict(DEFAULT_PLANS)


def test_plans_from_config_adds_a_complete_plan() -> None:
    spec: dict[str, object] = dict.fromkeys(LIMIT_NAMES, 7)
    spec["requests_per_second"] = 2.5
    spec["max_storage_bytes"] = None
    plans = plans_from_config({"gold": spec})
    assert set(plans) == {"free", "standard", "unlimited", "gold"}
    gold = plans["gold"]
    assert gold.requests_per_second == 2.5
    assert gold.max_topics == 7
    assert gold.max_storage_bytes is None


def test_plans_from_config_new_plan_must_be_complete() -> None:
    with pytest.raises(InvalidQuota, match=r"missing: .*max_retention_ms"):
        plans_from_config({"gold": {"requests_per_second": 1}})


def test_plans_from_config_replaces_a_default_field_by_field() -> None:
    plans = plans_from_config({"free": {"max_topics": 3, "max_connections": None}})
    assert plans["free"].max_topics == 3
    assert plans["free"].max_connections is None
    assert plans["free"].max_partitions == FREE.max_partitions
    assert DEFAULT_PLANS["free"].max_topics == 10  # the defaults are untouched


def test_plans_from_config_validates_with_the_plan_name() -> None:
    with pytest.raises(InvalidQuota, match="plan 'free': unknown limit 'topics'"):
        plans_from_config({"free": {"topics": 3}})
    with pytest.raises(InvalidQuota, match="plan 'free': max_topics must not be negative"):
        plans_from_config({"free": {"max_topics": -3}})
    with pytest.raises(InvalidQuota, match="plan 'free'"):
        plans_from_config({"free": {"max_topics": True}})
    with pytest.raises(InvalidQuota, match="must be an object"):
        plans_from_config({"free": 3})  # type: ignore[dict-item]
    with pytest.raises(InvalidQuota, match="non-empty"):
        plans_from_config({"": {}})

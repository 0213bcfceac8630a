"""Topic definitions as the API shows and accepts them: request models, plan bounds, replies.

Pure: no I/O. The routes in `routes.py` use these; a topic's JSON shape is
built here and nowhere else.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from gateway.http.names import client_name
from gateway.http.problems import GatewayError, ProblemType
from storage.records import TopicConfig, TopicDescription, TopicInfo
from tenants.plans import Limits


class ConfigIn(BaseModel):
    """Settable topic config keys; each optional, so PATCH changes only what it names."""

    model_config = ConfigDict(extra="forbid", strict=True)

    retention_ms: StrictInt | None = Field(default=None, ge=1)
    retention_bytes: StrictInt | None = Field(default=None, ge=1)
    max_record_bytes: StrictInt | None = Field(default=None, ge=1, le=64 * 1024 * 1024)
    segment_bytes: StrictInt | None = Field(default=None, ge=1024, le=2**31 - 1)
    segment_ms: StrictInt | None = Field(default=None, ge=1000)
    durability: Literal["fsync", "interval", "none"] | None = None
    flush_interval_ms: StrictInt | None = Field(default=None, ge=1)
    value_format: Literal["json", "string", "binary"] | None = None
    value_schema: StrictStr | None = Field(default=None, min_length=1, max_length=255)
    cleanup_policy: Literal["delete"] | None = None

    def apply(self, base: TopicConfig) -> TopicConfig:
        """`base` with every key this body set (an explicit null clears retention)."""
        changes = {name: getattr(self, name) for name in self.model_fields_set}
        nullable = {"retention_ms", "retention_bytes", "value_schema"}
        for name, value in list(changes.items()):
            if value is None and name not in nullable:
                del changes[name]  # null for a non-nullable key means "leave as is"
        merged = base.to_dict() | changes
        return TopicConfig.from_dict(merged)


class TopicIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: StrictStr = Field(max_length=300)
    partitions: StrictInt = Field(default=1, ge=1, le=10_000)
    config: ConfigIn = Field(default_factory=lambda: ConfigIn())


class TopicPatch(BaseModel):
    """Config keys to change and/or a larger partition count (never a smaller one)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    partitions: StrictInt | None = Field(default=None, ge=1, le=10_000)
    config: ConfigIn = Field(default_factory=lambda: ConfigIn())


def fit_to_plan(config: TopicConfig, explicit: set[str], limits: Limits) -> TopicConfig:
    """`config` within the plan's `max_retention_ms` and `max_record_bytes`.

    A value the client set above the plan is refused (422 naming the limit);
    a default above it, or no retention at all, is lowered to the plan's value.
    """
    changes: dict[str, Any] = {}
    bounds = (
        ("retention_ms", config.retention_ms, limits.max_retention_ms),
        ("max_record_bytes", config.max_record_bytes, limits.max_record_bytes),
    )
    for key, value, allowed in bounds:
        if allowed is None or (value is not None and value <= allowed):
            continue
        if key in explicit:
            plan_key = "max_retention_ms" if key == "retention_ms" else key
            shown = "unlimited" if value is None else str(value)
            raise GatewayError(
                ProblemType.INVALID_CONFIG,
                f"{key} {shown} is above the plan's {plan_key} of {allowed}",
                limit=plan_key,
                allowed=allowed,
                errors=[{"pointer": f"/config/{key}", "message": f"at most {allowed}"}],
            )
        changes[key] = allowed
    return dataclasses.replace(config, **changes) if changes else config


def topic_json(info: TopicInfo, namespace: str) -> dict[str, Any]:
    return {
        "name": client_name(namespace, info.name),
        "id": info.topic_id,
        "partitions": info.partitions,
        "config": info.config.to_dict(),
        "created_ms": info.created_ms,
    }


def description_json(desc: TopicDescription, namespace: str) -> dict[str, Any]:
    body = topic_json(desc.topic, namespace)
    body["partitions"] = [
        {
            "partition": p.partition,
            "start_offset": p.start_offset,
            "end_offset": p.end_offset,
            "bytes": p.bytes,
        }
        for p in desc.partitions
    ]
    return body

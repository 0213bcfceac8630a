"""Schemathesis drives produce and fetch from /openapi.json against a live server.

The property: whatever the input, the server answers (no hang) and never with
a 5xx. Half of the generated cases are pointed at real topics so that the
fuzzer reaches the record validation and fetch paths, not only the 404s.
"""

from __future__ import annotations

import json
import random
from typing import Any

import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from gateway.openapi import document
from tests.gateway.conftest import GatewayProcess

TOPICS = {"fuzz-json": "json", "fuzz-str": "string", "fuzz-bin": "binary"}


@pytest.fixture(scope="module")
def fuzz_topics(gateway: GatewayProcess) -> GatewayProcess:
    with gateway.client() as api:
        for name, fmt in TOPICS.items():
            api.post(
                "/v1/topics",
                json={"name": name, "partitions": 2, "config": {"value_format": fmt}},
            )
        api.post("/v1/topics/fuzz-json/records", json={"records": [{"value": 1}] * 5})
    return gateway


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx: Any, value: Any) -> bytes:
    """NDJSON bodies: one JSON value a line (anything else is sent as its JSON)."""
    items = value if isinstance(value, list) else [value]
    # json, not orjson: generated integers may exceed 64 bits, which the server must refuse.
    return "".join(json.dumps(item) + "\n" for item in items).encode()


# The document is static, so it is loaded at collection; the calls go to the live server.
schema = schemathesis.openapi.from_dict(orjson.loads(document())).include(
    path_regex=r"^/v1/topics/\{topic\}/(records|partitions/.*)$"
)


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_produce_and_fetch_never_answer_5xx(case: Any, fuzz_topics: GatewayProcess) -> None:
    gateway = fuzz_topics
    rng = random.Random(repr(case.path_parameters))
    if case.path_parameters and rng.random() < 0.7:
        case.path_parameters["topic"] = rng.choice(list(TOPICS))
        if "partition" in case.path_parameters:
            case.path_parameters["partition"] = rng.choice([0, 1, 0])
    wait = (case.query or {}).get("max_wait_ms")
    if isinstance(wait, int) or (isinstance(wait, str) and wait.isdigit()):
        case.query["max_wait_ms"] = min(int(wait), 50)  # keep the run short
    response = case.call(base_url=gateway.url, headers=gateway.headers, timeout=15)
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code >= 400:
        # schemathesis keeps headers as lower-cased names -> lists of values
        content_type = response.headers.get("content-type", [None])[0]
        assert content_type == "application/problem+json", (response.status_code, content_type)

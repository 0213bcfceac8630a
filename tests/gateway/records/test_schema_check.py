"""Schema validation in the one produce path: a schema-bound topic takes the reference
path plus the schema check, and for every valid body it stores what the C fast path
stores for the same body on an unbound topic, with the schema id header added."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.http.jsonlimits import JsonLimits
from gateway.http.problems import GatewayError
from gateway.http.value_schemas import SCHEMA_ID_HEADER
from gateway.records.batching import JSON, Bounds, parsed_body, placed, scanned
from gateway.records.fastpath import built
from gateway.records.partitioner import RoundRobin
from gateway.records.schema_check import (
    MAX_SCHEMA_ERRORS,
    pinned_version,
    scan_checked,
    validated,
    values_valid,
    versions_needed,
)
from gateway.schemas.binding import BoundSchema
from gateway.schemas.fast_types import value_check
from gateway.schemas.formats import SchemaType
from gateway.schemas.validators import compile_validator
from loadtests.order_schema import AVRO_SCHEMA, JSON_SCHEMA, order
from storage.records import TopicConfig, TopicInfo, unpack_records
from tests.gateway.schemas.strategies import keyword_schemas, values_for

NOW = 1_764_000_000_000
BOUNDS = Bounds(JsonLimits(), 10_000, 1 << 20)
FAST = built()
JSON_BOUND = BoundSchema(7, 3, compile_validator(SchemaType.JSON, JSON_SCHEMA))
AVRO_BOUND = BoundSchema(8, 1, compile_validator(SchemaType.AVRO, AVRO_SCHEMA))


def topic(partitions: int, subject: str | None) -> TopicInfo:
    return TopicInfo("t~orders", partitions, TopicConfig(value_schema=subject), 0)


def schema_path(body: bytes, partitions: int, schema: BoundSchema) -> list[Any]:
    info = topic(partitions, "orders-value")
    parsed = parsed_body(JSON, body, {}, info, BOUNDS)
    checked = validated(parsed, {None: schema}, None)
    batch = placed(checked, info, RoundRobin(), NOW)
    return [(p, unpack_records(packed)) for p, packed in batch.groups]


def fast_path(body: bytes, partitions: int) -> list[Any]:
    assert FAST is not None
    batch = scanned(FAST, body, topic(partitions, None), BOUNDS, RoundRobin(), NOW)
    assert batch is not None
    return [(p, unpack_records(packed)) for p, packed in batch.groups]


def fast_schema_path(body: bytes, partitions: int, schema: BoundSchema) -> list[Any] | None:
    """The produce path's fast way: the C scan checking each value (or the scan, then
    each value checked)."""
    assert FAST is not None
    info = topic(partitions, "orders-value")
    batch = scan_checked(FAST, body, info, BOUNDS, RoundRobin(), NOW, schema)
    if batch is None:
        return None
    return [(p, unpack_records(packed)) for p, packed in batch.groups]


records = st.lists(
    st.builds(
        lambda i, key, headers: {
            "value": order(i),
            **({"key": key} if key is not None else {}),
            **({"headers": headers} if headers else {}),
        },
        st.integers(0, 10_000),
        st.none() | st.text(min_size=1, max_size=8),
        st.lists(st.tuples(st.sampled_from(["a", "trace"]), st.text(max_size=5)), max_size=2),
    ),
    min_size=1,
    max_size=20,
)


@pytest.mark.skipif(FAST is None, reason="the C fast path is not built")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records, st.sampled_from([1, 3]), st.sampled_from([JSON_BOUND, AVRO_BOUND]))
def test_a_valid_body_is_stored_as_the_fast_path_stores_it_plus_the_schema_id(
    body_records: list[dict[str, Any]], partitions: int, schema: BoundSchema
) -> None:
    body = orjson.dumps({"records": body_records})
    with_schema = schema_path(body, partitions, schema)
    expected = [
        (
            p,
            [
                r._replace(headers=(*r.headers, (SCHEMA_ID_HEADER, b"%d" % schema.schema_id)))
                for r in rs
            ],
        )
        for p, rs in fast_path(body, partitions)
    ]
    assert with_schema == expected
    assert fast_schema_path(body, partitions, schema) == with_schema


@pytest.mark.skipif(FAST is None, reason="the C fast path is not built")
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records, st.integers(0, 19), st.sampled_from([JSON_BOUND, AVRO_BOUND]))
def test_the_fast_way_hands_any_invalid_body_to_the_reference_path(
    body_records: list[dict[str, Any]], bad: int, schema: BoundSchema
) -> None:
    body_records[bad % len(body_records)]["value"]["status"] = "lost"
    body = orjson.dumps({"records": body_records})
    assert fast_schema_path(body, 1, schema) is None
    with pytest.raises(GatewayError):
        schema_path(body, 1, schema)


@pytest.mark.skipif(FAST is None, reason="the C fast path is not built")
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_what_the_fast_way_accepts_the_reference_path_accepts_and_stores_alike(
    data: st.DataObject,
) -> None:
    doc = data.draw(keyword_schemas())
    values = data.draw(st.lists(values_for(doc, doc), min_size=1, max_size=5))
    body = json.dumps({"records": [{"value": v} for v in values]}).encode()  # any integer
    schema = BoundSchema(5, 2, compile_validator(SchemaType.JSON, doc))
    assert FAST is not None
    fast = scan_checked(FAST, body, topic(1, "s-value"), BOUNDS, RoundRobin(), NOW, schema)
    try:
        reference = schema_path(body, 1, schema)
    except GatewayError:
        assert fast is None
        return
    if fast is not None:
        assert [(p, unpack_records(packed)) for p, packed in fast.groups] == reference


@pytest.mark.skipif(FAST is None, reason="the C fast path is not built")
def test_a_value_the_check_refuses_but_the_validator_takes_is_accepted_the_slower_way() -> None:
    schema = BoundSchema(5, 1, compile_validator(SchemaType.JSON, {"type": "integer"}))
    body = b'{"records": [{"value": 1.0}, {"value": 2}]}'  # 1.0 is an integer to the reference
    assert schema.value_check is not None
    [(_, records)] = fast_schema_path(body, 1, schema) or [(0, [])]
    assert [r.value for r in records] == [b"1.0", b"2"]
    assert values_valid(body, schema)
    assert not values_valid(b'{"records": [{"value": 1.5}]}', schema)


def test_the_order_schemas_take_the_fast_check() -> None:
    assert JSON_BOUND.value_check is not None
    assert AVRO_BOUND.value_check is not None
    assert value_check({"type": "string", "format": "email"}) is None


@pytest.mark.skipif(FAST is None, reason="the C fast path is not built")
def test_the_scanner_declines_pinned_records_and_the_reserved_header_goes_the_reference_way() -> (
    None
):
    assert FAST is not None
    info = topic(1, "orders-value")
    pinned = orjson.dumps({"records": [{"value": order(1), "schema_version": 1}]})
    assert scanned(FAST, pinned, info, BOUNDS, RoundRobin(), NOW) is None
    spoofed = orjson.dumps({"records": [{"value": order(1), "headers": {SCHEMA_ID_HEADER: "9"}}]})
    assert fast_schema_path(spoofed, 1, JSON_BOUND) is None
    escaped = spoofed.replace(b"tidegate-", b"tidegate\\u002d")  # the same name, escaped
    assert orjson.loads(escaped) == orjson.loads(spoofed)
    assert fast_schema_path(escaped, 1, JSON_BOUND) is None
    email = BoundSchema(9, 1, compile_validator(SchemaType.JSON, {"format": "email"}))
    assert email.value_check is None  # the scan, then the validator's verdicts
    assert fast_schema_path(escaped, 1, email) is None
    pairs = orjson.dumps({"records": [{"value": 1, "headers": [[SCHEMA_ID_HEADER, "9"]]}]})
    assert fast_schema_path(pairs, 1, email) is None


def test_one_bad_record_among_100_rejects_all_with_its_index_and_pointer() -> None:
    values = [order(i) for i in range(100)]
    values[37]["status"] = "lost"
    values[64]["items"][1]["quantity"] = 0
    body = orjson.dumps({"records": [{"value": v} for v in values]})
    with pytest.raises(GatewayError) as refused:
        schema_path(body, 1, JSON_BOUND)
    problem = refused.value.problem
    assert problem.type.status == 422
    listed = [(e["record"], e["pointer"]) for e in problem.extensions["errors"]]
    assert listed == [(37, "/records/37/value/status"), (64, "/records/64/value/items/1/quantity")]
    assert problem.extensions["errors_not_shown"] == 0


def test_failures_past_the_cap_are_counted_not_listed() -> None:
    bad = [dict(order(i), status="lost", currency="EURO") for i in range(80)]
    body = orjson.dumps({"records": [{"value": v} for v in bad]})
    with pytest.raises(GatewayError) as refused:
        schema_path(body, 1, JSON_BOUND)
    extensions = refused.value.problem.extensions
    assert len(extensions["errors"]) == MAX_SCHEMA_ERRORS
    assert extensions["errors_not_shown"] >= 80 * 2 - MAX_SCHEMA_ERRORS - 30


def test_a_client_sent_schema_id_header_is_replaced() -> None:
    body = orjson.dumps({"records": [{"value": order(1), "headers": [[SCHEMA_ID_HEADER, "999"]]}]})
    [(_, [record])] = schema_path(body, 1, JSON_BOUND)
    assert record.headers == ((SCHEMA_ID_HEADER, b"7"),)


def test_records_pin_versions_and_the_request_pins_its_default() -> None:
    info = topic(1, "orders-value")
    body = orjson.dumps({"records": [{"value": 1}, {"value": 2, "schema_version": 1}]})
    parsed = parsed_body(JSON, body, {}, info, BOUNDS)
    assert versions_needed(parsed, 4) == {4, 1}
    assert pinned_version({"tidegate-schema-version": "4"}) == 4
    assert pinned_version({}) is None
    with pytest.raises(GatewayError):
        pinned_version({"tidegate-schema-version": "zero"})
    unbound = dataclasses.replace(info, config=TopicConfig())
    with pytest.raises(GatewayError) as refused:
        parsed_body(JSON, body, {}, unbound, BOUNDS)
    assert refused.value.problem.extensions["errors"][0]["pointer"] == "/records/1/schema_version"


def test_the_pinned_version_is_part_of_an_idempotent_request() -> None:
    from gateway.records.idempotency import fingerprint

    plain = fingerprint("POST", "/v1/topics/t/records", "", "application/json", b"{}")
    assert plain == fingerprint("POST", "/v1/topics/t/records", "", "application/json", b"{}", None)
    pinned = fingerprint("POST", "/v1/topics/t/records", "", "application/json", b"{}", "2")
    assert pinned != plain
    assert pinned != fingerprint("POST", "/v1/topics/t/records", "", "application/json", b"{}", "3")

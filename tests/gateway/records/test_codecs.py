"""Value formats and record shapes: what goes in comes back out, and bad input is named."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.http.jsonlimits import too_deep
from gateway.records.codecs import (
    InvalidValue,
    ParsedRecord,
    TooDeep,
    _shallow,
    decode_value,
    encode_value,
    parse_headers,
    parse_record,
    parse_records,
    raw_value,
    record_to_json,
    records_json,
)
from storage.records import Record, ValueFormat

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=10),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=5), c, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_json_values_round_trip(value: Any) -> None:
    stored = encode_value(value, ValueFormat.JSON)
    shown = orjson.loads(orjson.dumps({"v": decode_value(stored, ValueFormat.JSON)}))["v"]
    assert shown == value


@given(st.text())
def test_string_values_round_trip(value: str) -> None:
    stored = encode_value(value, ValueFormat.STRING)
    assert stored == value.encode("utf-8")
    assert decode_value(stored, ValueFormat.STRING) == value


@given(st.binary())
def test_binary_values_round_trip_through_base64(value: bytes) -> None:
    text = base64.b64encode(value).decode()
    stored = encode_value(text, ValueFormat.BINARY)
    assert stored == value
    assert decode_value(stored, ValueFormat.BINARY) == text


@pytest.mark.parametrize(
    ("value", "fmt"),
    [(1, ValueFormat.STRING), ({"a": 1}, ValueFormat.BINARY), ("not base64!", ValueFormat.BINARY)],
)
def test_values_that_do_not_fit_the_format_are_refused(value: Any, fmt: ValueFormat) -> None:
    with pytest.raises(InvalidValue):
        encode_value(value, fmt)


def test_raw_bodies_follow_the_format() -> None:
    assert raw_value(b'{ "a" : 1 }', ValueFormat.JSON) == b'{"a":1}'
    assert raw_value(b"\xff\x00", ValueFormat.BINARY) == b"\xff\x00"
    with pytest.raises(InvalidValue):
        raw_value(b"not json", ValueFormat.JSON)
    with pytest.raises(InvalidValue):
        raw_value(b"\xff", ValueFormat.STRING)


def test_headers_as_pairs_or_object_keep_order_and_repeats() -> None:
    assert parse_headers([["a", "1"], ["a", "2"]]) == (("a", b"1"), ("a", b"2"))
    assert parse_headers({"x": "y", "z": None}) == (("x", b"y"), ("z", b""))
    for bad in ("x", [["a"]], [[1, "v"]], [["a", 2]]):
        with pytest.raises(InvalidValue):
            parse_headers(bad)


def test_a_record_lists_every_problem_with_pointers() -> None:
    obj = {"key": 5, "value": 1, "partition": 9, "timestamp": -1, "extra": True}
    errors = parse_record(obj, 3, ValueFormat.STRING, 4)
    assert isinstance(errors, list)
    pointers = sorted(e.pointer for e in errors)
    assert pointers == [
        "/records/3/extra",
        "/records/3/key",
        "/records/3/partition",
        "/records/3/timestamp",
        "/records/3/value",
    ]
    assert all(e.record == 3 for e in errors)


def test_a_good_record_parses() -> None:
    parsed = parse_record(
        {"key": "k", "value": {"a": 1}, "headers": [["h", "v"]], "partition": 1, "timestamp": 5},
        0,
        ValueFormat.JSON,
        2,
    )
    assert isinstance(parsed, ParsedRecord)
    assert parsed.partition == 1
    assert parsed.record.value == b'{"a":1}'
    assert parsed.record.key == b"k"
    assert parsed.record.timestamp == 5


def test_records_render_in_the_api_shape() -> None:
    record = Record(offset=7, timestamp=9, key=b"k", value=b'{"a":1}', headers=(("h", b"v"),))
    body = orjson.loads(orjson.dumps(record_to_json(record, 2, ValueFormat.JSON)))
    assert body == {
        "partition": 2,
        "offset": 7,
        "timestamp": 9,
        "key": "k",
        "value": {"a": 1},
        "headers": [["h", "v"]],
    }


stored_records = st.builds(
    Record,
    offset=st.integers(0, 2**63 - 1),
    timestamp=st.integers(0, 2**53),
    key=st.none() | st.binary(max_size=12),
    value=st.none() | st.binary(max_size=24),
    headers=st.lists(
        st.tuples(st.text(min_size=1, max_size=6), st.binary(max_size=8)), max_size=3
    ).map(tuple),
)


@given(
    st.lists(stored_records, max_size=6), st.sampled_from([ValueFormat.STRING, ValueFormat.BINARY])
)
def test_fetch_replies_built_in_one_pass_equal_the_dict_rendering(
    records: list[Record], fmt: ValueFormat
) -> None:
    """Byte for byte what orjson makes of the per-record dicts, invalid UTF-8 included."""
    expected = orjson.dumps([record_to_json(r, 3, fmt) for r in records])
    assert records_json(records, 3, fmt) == expected


@given(st.lists(json_values, max_size=6), st.lists(st.none() | st.text(max_size=8), max_size=6))
def test_fetch_replies_embed_stored_json_values_verbatim(
    values: list[Any], keys: list[str | None]
) -> None:
    records = [
        Record(i, 1000 + i, None if k is None else k.encode(), encode_value(v, ValueFormat.JSON))
        for i, (v, k) in enumerate(zip(values, keys, strict=False))
    ]
    built = records_json(records, 0, ValueFormat.JSON)
    assert built == orjson.dumps([record_to_json(r, 0, ValueFormat.JSON) for r in records])
    assert [r["value"] for r in orjson.loads(built)] == values[: len(records)]


record_objects = (
    st.dictionaries(
        st.sampled_from(["key", "value", "headers", "partition", "timestamp", "other"]),
        st.none()
        | st.booleans()
        | st.integers(-5, 2**64)
        | st.text(max_size=6)
        | json_values
        | st.lists(st.lists(st.text(max_size=3), min_size=2, max_size=2), max_size=2),
        max_size=5,
    )
    | json_values
)


@given(
    st.lists(record_objects, max_size=8),
    st.sampled_from(list(ValueFormat)),
    st.integers(1, 4),
    st.none() | st.integers(0, 40),
    st.none() | st.integers(0, 6),
)
def test_the_batch_parser_agrees_with_the_record_parser(
    objects: list[Any],
    fmt: ValueFormat,
    partitions: int,
    max_bytes: int | None,
    max_depth: int | None,
) -> None:
    """The inline path of parse_records is an optimisation, never a different answer:
    the same records and errors as `parse_record` one by one, the same records over
    the size limit, and TooDeep exactly when a record nests past `max_depth`."""
    assert_batch_agrees(objects, fmt, partitions, max_bytes, max_depth)


simple_records = st.lists(st.fixed_dictionaries({"value": json_values}), min_size=1, max_size=8) | (
    st.lists(
        st.fixed_dictionaries({"key": st.text(max_size=4), "value": json_values}),
        min_size=1,
        max_size=8,
    )
)


@given(simple_records, st.none() | st.integers(0, 40), st.none() | st.integers(0, 6))
def test_the_whole_batch_path_agrees_with_the_record_parser(
    objects: list[Any], max_bytes: int | None, max_depth: int | None
) -> None:
    """Batches of `{"value": v}` or `{"key": k, "value": v}` take the path that checks a
    whole batch at once; it must answer as the record parser does, at every limit."""
    assert_batch_agrees(objects, ValueFormat.JSON, 1, max_bytes, max_depth)


def assert_batch_agrees(
    objects: list[Any],
    fmt: ValueFormat,
    partitions: int,
    max_bytes: int | None,
    max_depth: int | None,
) -> None:
    expected_parsed: list[ParsedRecord] = []
    expected_errors: list[Any] = []
    expected_oversize: list[int] = []
    for i, obj in enumerate(objects):
        one = parse_record(obj, i, fmt, partitions)
        if isinstance(one, list):
            expected_errors.extend(one)
        else:
            expected_parsed.append(one)
            if max_bytes is not None and one.size > max_bytes:
                expected_oversize.append(i)
    if max_depth is not None and any(too_deep(o, max_depth) for o in objects):
        with pytest.raises(TooDeep):
            parse_records(objects, fmt, partitions, max_bytes=max_bytes, max_depth=max_depth)
        return
    batch = parse_records(objects, fmt, partitions, max_bytes=max_bytes, max_depth=max_depth)
    assert batch.records == [p.record for p in expected_parsed]
    assert batch.partitions == [p.partition for p in expected_parsed]
    assert batch.errors == expected_errors
    assert [e.record for e in batch.oversize] == expected_oversize


def test_depth_counts_containers_not_brackets_inside_strings() -> None:
    """A string full of brackets is shallow; a value nested past the budget is not."""
    shallow = {"value": {"s": "[[[[{{{{" * 100}}
    batch = parse_records([shallow], ValueFormat.JSON, 1, max_depth=2)
    assert len(batch.records) == 1
    nested: Any = 1
    for _ in range(3):
        nested = [nested]
    with pytest.raises(TooDeep):
        parse_records([{"value": nested}], ValueFormat.JSON, 1, max_depth=3)
    assert parse_records([{"value": nested}], ValueFormat.JSON, 1, max_depth=4).records


@given(json_values, st.integers(0, 6))
def test_the_batch_depth_check_agrees_with_the_walk(value: Any, max_depth: int) -> None:
    """`_shallow` decides depth a level at a time over a batch; the walk is the reference."""
    values = [value, {"k": value}, [value, 1]]
    for i, v in enumerate(values):
        assert _shallow([v], max_depth) is not too_deep(v, max_depth), i
    assert _shallow(values, max_depth) is not any(too_deep(v, max_depth) for v in values)


@pytest.mark.parametrize("keyed", [False, True])
def test_a_whole_batch_at_the_size_limit_passes_and_one_byte_over_does_not(keyed: bool) -> None:
    def batch(size: int) -> list[Any]:
        key = {"key": "kk"} if keyed else {}
        value = "x" * (size - 2 - (2 if keyed else 0))  # a JSON string: 2 quotes
        return [{**key, "value": "a"}, {**key, "value": value}]

    at = parse_records(batch(20), ValueFormat.JSON, 1, max_bytes=20)
    assert (len(at.records), at.oversize) == (2, [])
    over = parse_records(batch(21), ValueFormat.JSON, 1, max_bytes=20)
    assert [e.record for e in over.oversize] == [1]


@given(
    st.lists(json_values, min_size=1, max_size=6),
    st.none() | st.lists(st.binary(max_size=6), min_size=6, max_size=6),
    st.integers(0, 3),
)
def test_fetch_replies_of_whole_batches_equal_the_dict_rendering(
    values: list[Any], keys: list[bytes] | None, partition: int
) -> None:
    """Records with values, no headers and keys all null or all present (any bytes,
    invalid UTF-8 included) are rendered a batch at a time; byte for byte the same."""
    records = [
        Record(i, 7 * i, None if keys is None else keys[i], orjson.dumps(v))
        for i, v in enumerate(values)
    ]
    expected = orjson.dumps([record_to_json(r, partition, ValueFormat.JSON) for r in records])
    assert records_json(records, partition, ValueFormat.JSON) == expected

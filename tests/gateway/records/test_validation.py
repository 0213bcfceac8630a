"""The reference produce path: every record checked, every problem named by a pointer."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.http.jsonlimits import JsonLimits
from gateway.records.validation import (
    BodyError,
    ParsedRecord,
    RecordTexts,
    check_batch,
    check_headers,
    check_record,
    read_records,
    too_deep,
)
from gateway.records.values import InvalidValue
from storage.records import NewRecord, ValueFormat

LIMITS = JsonLimits()


def record(obj: Any, fmt: ValueFormat = ValueFormat.JSON, partitions: int = 4) -> Any:
    return check_record(orjson.dumps(obj), 3, fmt, partitions)


def test_a_record_lists_every_problem_with_pointers() -> None:
    errors = record(
        {"key": 5, "value": 1, "partition": 9, "timestamp": -1, "extra": True}, ValueFormat.STRING
    )
    assert isinstance(errors, list)
    assert sorted(e.pointer for e in errors) == [
        "/records/3/extra",
        "/records/3/key",
        "/records/3/partition",
        "/records/3/timestamp",
        "/records/3/value",
    ]
    assert all(e.record == 3 for e in errors)


@pytest.mark.parametrize(
    ("field", "value"),
    [("partition", True), ("partition", 1.0), ("timestamp", "5"), ("key", ["k"]), ("key", 1)],
)
def test_fields_of_the_wrong_type_are_refused(field: str, value: Any) -> None:
    errors = record({field: value, "value": 1})
    assert isinstance(errors, list)
    assert [e.pointer for e in errors] == [f"/records/3/{field}"]


def test_a_good_record_is_read_exactly() -> None:
    text = (
        b'{"key":"k\\u00e9","value":{"a" : 1.50},"headers":[["h","v"]],"partition":1,"timestamp":5}'
    )
    parsed = check_record(text, 0, ValueFormat.JSON, 2)
    assert isinstance(parsed, ParsedRecord)
    assert parsed.record == NewRecord(b'{"a":1.50}', "ké".encode(), (("h", b"v"),), 5)
    assert parsed.partition == 1
    assert parsed.size == parsed.record.size()


@pytest.mark.parametrize("where", ["key", "value"])
def test_an_unpaired_surrogate_escape_makes_the_body_malformed(where: str) -> None:
    body = b'{"records": [{"%s": "\\ud800"}]}' % where.encode()
    with pytest.raises(BodyError) as caught:
        read_records(body, ndjson=False, limits=LIMITS)
    assert caught.value.kind == "malformed"


def test_headers_as_pairs_or_object_keep_order_and_repeats() -> None:
    assert check_headers(b'[["a","1"],["a","2"]]') == (("a", b"1"), ("a", b"2"))
    assert check_headers(b'{"x":"y","z":null}') == (("x", b"y"), ("z", b""))
    assert check_headers(b"null") == ()
    for bad, where in (
        (b'"x"', "/headers"),
        (b'[["a"]]', "/headers/0"),
        (b'[[1,"v"]]', "/headers/0/0"),
        (b'[["",""]]', "/headers"),
        (b'[["a",2]]', "/headers/0/1"),
        (b'{"a":2}', "/headers/a"),
    ):
        with pytest.raises(InvalidValue) as caught:
            check_headers(bad)
        assert caught.value.where == where, bad


def test_a_json_body_gives_its_record_texts_as_sent() -> None:
    body = b'{"records": [{"value": 1.0}, {"value" : [1, 2]}]}'
    texts = read_records(body, ndjson=False, limits=LIMITS)
    assert texts == RecordTexts([b'{"value": 1.0}', b'{"value" : [1, 2]}'], LIMITS.max_depth - 2)


@pytest.mark.parametrize(
    ("body", "kind", "detail"),
    [
        (b'{"records": [1,, 2]}', "malformed", 15),
        (b'{"records": [1', "malformed", 14),
        (b'{"records": "x"}', "shape", ["/records"]),
        (b'{"records": [], "extra": 1}', "shape", ["/extra"]),
        (b"[]", "shape", ["/records"]),
        (b'{"records": ["\xff"]}', "malformed", 14),
    ],
)
def test_a_body_that_is_not_a_batch_says_what_and_where(
    body: bytes, kind: str, detail: Any
) -> None:
    with pytest.raises(BodyError) as caught:
        read_records(body, ndjson=False, limits=LIMITS)
    assert caught.value.kind == kind
    if kind == "malformed":
        assert caught.value.position == detail
    else:
        assert caught.value.pointers == detail


def test_an_ndjson_body_breaks_at_the_byte_of_its_bad_line() -> None:
    body = b'{"value": 1}\n\n{"value": 2}\n{"value": \n'
    with pytest.raises(BodyError) as caught:
        read_records(body, ndjson=True, limits=LIMITS)
    assert caught.value.kind == "malformed"
    assert body.count(b"\n", 0, caught.value.position) == 3  # the fourth line
    good = read_records(body[:27], ndjson=True, limits=LIMITS)
    assert good.texts == [b'{"value": 1}', b'{"value": 2}']


def test_depth_counts_containers_not_brackets_inside_strings() -> None:
    assert not too_deep(orjson.dumps({"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}), 2)
    assert too_deep(b"[[[[1]]]]", 3)
    assert not too_deep(b"[[[1]]]", 3)


nested = st.recursive(st.integers(0, 9), lambda c: st.lists(c, max_size=3), max_leaves=30)


@given(nested, st.integers(0, 8))
def test_the_depth_bound_agrees_with_a_walk(value: Any, max_depth: int) -> None:
    def depth(v: Any) -> int:
        return 1 + max(map(depth, v), default=0) if isinstance(v, list) else 0

    assert too_deep(orjson.dumps(value), max_depth) == (depth(value) > max_depth)


def test_a_batch_too_deep_is_refused_whole() -> None:
    texts = RecordTexts([b'{"value": 1}', b'{"value": [[[[1]]]]}'], max_depth=3)
    with pytest.raises(BodyError) as caught:
        check_batch(texts, ValueFormat.JSON, 1, max_record_bytes=100)
    assert caught.value.kind == "too-deep"


def test_a_batch_reports_every_bad_and_every_oversize_record() -> None:
    texts = RecordTexts([b'{"value": 1}', b'{"value": "x"}', b'{"key": 5}', b'{"v": 1}'], 62)
    batch = check_batch(texts, ValueFormat.JSON, 1, max_record_bytes=2)
    assert [e.record for e in batch.oversize] == [1]
    assert [e.pointer for e in batch.errors] == ["/records/2/key", "/records/3/v"]
    assert [r.value for r in batch.records] == [b"1", b'"x"']

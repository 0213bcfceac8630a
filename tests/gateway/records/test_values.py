"""Value formats: what goes in comes back out, exactly as sent."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.http.recordjson import value_json
from gateway.records.values import InvalidValue, raw_body_value, stored_value
from storage.records import ValueFormat

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=5), c, max_size=4),
    max_leaves=20,
)


@given(json_values.filter(lambda v: v is not None), st.booleans())
def test_a_json_value_is_stored_as_sent_without_its_whitespace(value: Any, indented: bool) -> None:
    sent = orjson.dumps(value, option=orjson.OPT_INDENT_2 if indented else 0)
    stored = stored_value(sent, ValueFormat.JSON)
    assert stored == orjson.dumps(value)  # orjson writes compact text; indenting only adds space
    assert value_json(stored, ValueFormat.JSON) == stored


@pytest.mark.parametrize(
    "text",
    [
        b"18446744073709551616",
        b"-99999999999999999999999999",
        b"1.10",
        b"1e2",
        b"0.1000000000000000055511151231257827",
        b'"\\u00e9\\/"',
        b'{"a":1,"a":2}',
    ],
)
def test_numbers_escapes_and_members_are_kept_exactly(text: bytes) -> None:
    assert stored_value(text, ValueFormat.JSON) == text
    spaced = text.replace(b",", b" , ").replace(b":", b" : ")
    assert stored_value(b" \n" + spaced + b"\t", ValueFormat.JSON) == text


@given(st.text())
def test_string_values_round_trip(value: str) -> None:
    stored = stored_value(orjson.dumps(value), ValueFormat.STRING)
    assert stored == value.encode("utf-8")
    assert orjson.loads(value_json(stored, ValueFormat.STRING)) == value


@given(st.binary())
def test_binary_values_round_trip_through_base64(value: bytes) -> None:
    text = base64.b64encode(value).decode()
    stored = stored_value(orjson.dumps(text), ValueFormat.BINARY)
    assert stored == value
    assert orjson.loads(value_json(stored, ValueFormat.BINARY)) == text


def test_null_is_a_tombstone_in_every_format() -> None:
    for fmt in ValueFormat:
        assert stored_value(b"null", fmt) is None
        assert value_json(None, fmt) == b"null"


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        (b"1", ValueFormat.STRING),
        (b'{"a":1}', ValueFormat.BINARY),
        (b'"not base64!"', ValueFormat.BINARY),
        (b'"\\ud800"', ValueFormat.JSON),
        (b"[1,", ValueFormat.JSON),
    ],
)
def test_values_that_do_not_fit_the_format_are_refused(text: bytes, fmt: ValueFormat) -> None:
    with pytest.raises(InvalidValue):
        stored_value(text, fmt)


def test_raw_bodies_follow_the_format() -> None:
    assert raw_body_value(b'{ "a" : 1.50 }', ValueFormat.JSON) == b'{"a":1.50}'
    assert raw_body_value(b"\xff\x00", ValueFormat.BINARY) == b"\xff\x00"
    for body, fmt in ((b"not json", ValueFormat.JSON), (b"\xff", ValueFormat.STRING)):
        with pytest.raises(InvalidValue):
            raw_body_value(body, fmt)
    with pytest.raises(InvalidValue, match="not UTF-8"):
        raw_body_value(b'"\xff"', ValueFormat.JSON)

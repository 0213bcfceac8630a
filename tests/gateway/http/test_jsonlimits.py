"""JSON limits are enforced on raw bytes, exactly, fast, and without ever crashing."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.http.bodies import parse_json
from gateway.http.jsonlimits import JsonLimitExceeded, JsonLimits, check_json_limits
from gateway.http.problems import GatewayError, ProblemType

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(codec="utf-8"), max_size=20),
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=40,
)


def reference(value: Any) -> tuple[int, int, int]:
    """(depth, items, longest string) by walking the parsed value (iteratively)."""
    depth = items = longest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, str):
            longest = max(longest, len(orjson.dumps(v)) - 2)
        elif isinstance(v, list | dict):
            d += 1
            depth = max(depth, d)
            items += 1 + max(len(v) - 1, 0)
            members = list(v.values()) if isinstance(v, dict) else v
            if isinstance(v, dict):
                for k in v:
                    longest = max(longest, len(orjson.dumps(k)) - 2)
            stack.extend((m, d) for m in members)
    return depth, items, longest


@settings(max_examples=300, deadline=None)
@given(json_values, st.integers(2, 6), st.integers(1, 40), st.integers(1, 30))
def test_decision_matches_a_walk_of_the_parsed_value(
    value: Any, max_depth: int, max_items: int, max_string: int
) -> None:
    body = orjson.dumps(value)
    limits = JsonLimits(max_depth=max_depth, max_items=max_items, max_string_bytes=max_string)
    depth, items, longest = reference(value)
    within = depth <= max_depth and items <= max_items and longest <= max_string
    try:
        check_json_limits(body, limits)
        accepted = True
    except JsonLimitExceeded:
        accepted = False
    assert accepted == within


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise_anything_else(body: bytes) -> None:
    with contextlib.suppress(JsonLimitExceeded):
        check_json_limits(body, JsonLimits(max_depth=3, max_items=10, max_string_bytes=8))


BOMBS = {
    "deep arrays": b"[" * 2_000_000,
    "deep objects": b'{"a":' * 500_000,
    "wide array": b"[" + b"0," * 4_000_000 + b"0]",
    "many empty objects": b"[" + b"{}," * 3_000_000 + b"{}]",
    "huge string": b'"' + b"x" * 9_000_000 + b'"',
    "unterminated string": b'"' + b"x" * 9_000_000,
    "escaped quotes": b'"\\"' * 3_000_000,
    "strings without commas": b'"a"' * 3_000_000,
}


@pytest.mark.parametrize("name", list(BOMBS))
def test_bombs_are_refused_quickly(name: str) -> None:
    limits = JsonLimits(max_depth=64, max_items=100_000, max_string_bytes=1024 * 1024)
    # CPU time, not wall time: a bomb must cost little work, however busy the machine.
    started = time.process_time()
    with pytest.raises(JsonLimitExceeded):
        check_json_limits(BOMBS[name], limits)
    assert time.process_time() - started < 1.0


def test_ordinary_batches_take_the_fast_path() -> None:
    body = orjson.dumps({"records": [{"key": f"k{i}", "value": {"n": i}} for i in range(1000)]})
    check_json_limits(body, JsonLimits())


def test_brackets_inside_strings_do_not_count() -> None:
    body = orjson.dumps({"v": "[" * 100 + "," * 100})
    check_json_limits(body, JsonLimits(max_depth=2, max_items=3, max_string_bytes=1000))


def test_parse_json_refuses_depth_hidden_among_few_items() -> None:
    deep = b"[" * 70 + b"]" * 70  # few items, small body: only the depth check can catch it
    with pytest.raises(GatewayError) as caught:
        parse_json(deep, JsonLimits(max_depth=64))
    assert caught.value.problem.type is ProblemType.JSON_TOO_COMPLEX


def test_parse_json_accepts_wide_shallow_batches() -> None:
    body = orjson.dumps({"records": [{"key": str(i), "value": {"n": [i]}} for i in range(500)]})
    assert len(parse_json(body, JsonLimits(max_depth=5))["records"]) == 500


def test_parse_json_past_orjson_nesting_is_a_limit_not_a_parse_error() -> None:
    with pytest.raises(GatewayError) as caught:
        parse_json(b"[" * 2000 + b"]" * 2000, JsonLimits(max_depth=64))
    assert caught.value.problem.type is ProblemType.JSON_TOO_COMPLEX

"""Query strings decoded strictly: what a route reads is what the client sent, or 400."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.http.params import decoded_query, parse_int
from gateway.http.problems import GatewayError


def test_escapes_and_plus_are_decoded_and_the_last_value_wins() -> None:
    raw = b"key=%C3%BC+x&offset=1&offset=2&empty=&flag&%F0%9F%8C%8A=wave"
    assert decoded_query(raw) == {
        "key": "ü x",
        "offset": "2",
        "empty": "",
        "flag": "",
        "🌊": "wave",
    }


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        (b"key=%ED%A0%80", "key"),  # a lone surrogate, encoded
        (b"a=1&key=%FF", "key"),
        (b"key=%C3", "key"),  # a sequence cut short
        (b"key=\xff", "key"),  # raw bytes, not escaped
        (b"k%FFy=1", "k\ufffdy"),  # the name itself: shown as best it can be
    ],
)
def test_a_parameter_that_is_not_utf8_is_refused_by_name(raw: bytes, named: str) -> None:
    with pytest.raises(GatewayError) as info:
        decoded_query(raw)
    problem = info.value.problem
    assert problem.type.status == 400
    assert problem.extensions["parameter"] == named


def reference_parse_int(text: str) -> int | None:
    """The rule parse_int implements, written plainly."""
    body = text[1:] if text.startswith("-") else text
    if not body or not all("0" <= c <= "9" for c in body) or len(body) > 19:
        return None
    value = int(text)
    return value if -(2**63) <= value <= 2**63 - 1 else None


@given(
    st.one_of(
        st.text(max_size=25),
        st.integers(min_value=-(2**64), max_value=2**64).map(str),
        st.text(alphabet="0123456789-٣", max_size=21),
    )
)
def test_parse_int_takes_exactly_decimal_int64(text: str) -> None:
    assert parse_int(text) == reference_parse_int(text)

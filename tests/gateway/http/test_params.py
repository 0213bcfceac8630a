"""Query strings decoded strictly: what a route reads is what the client sent, or 400."""

from __future__ import annotations

import pytest

from gateway.http.params import decoded_query
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

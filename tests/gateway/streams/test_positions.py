"""Stream start positions and resume tokens: what `from`, `partitions` and a token mean."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.http.problems import GatewayError
from gateway.streams.positions import (
    BadPositions,
    Start,
    format_positions,
    on_gap_param,
    parse_positions,
    start_of,
)

positions_st = st.dictionaries(
    st.integers(0, 4095), st.integers(0, 2**63 - 1), min_size=1, max_size=50
)


@given(positions_st)
def test_a_token_reads_back_as_the_positions_it_names(positions: dict[int, int]) -> None:
    token = format_positions(positions)
    assert parse_positions(token) == positions
    assert format_positions(parse_positions(token)) == token  # one spelling per position


@pytest.mark.parametrize("text", ["", "0", "0:", ":1", "a:1", "0:-1", "-1:0", "0:1,0:2", "0:1;1:2"])
def test_malformed_position_lists_are_refused(text: str) -> None:
    with pytest.raises(BadPositions):
        parse_positions(text)


def test_the_default_start_is_latest_and_every_partition() -> None:
    assert start_of({}) == Start("latest")


def test_from_and_partitions() -> None:
    assert start_of({"from": "earliest", "partitions": "2,0"}) == Start(
        "earliest", partitions=(2, 0)
    )
    assert start_of({"from": "1:5,0:7"}).positions == {1: 5, 0: 7}
    assert start_of({"timestamp": "1700000000000"}) == Start("timestamp", timestamp=1700000000000)


def test_a_resume_token_wins_over_from() -> None:
    start = start_of({"from": "earliest"}, resume="0:42")
    assert (start.kind, start.positions) == ("positions", {0: 42})


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"from": "soon"}, "from"),
        ({"from": "0:1", "timestamp": "5"}, "timestamp"),
        ({"timestamp": "-5"}, "timestamp"),
        ({"partitions": "0,0"}, "partitions"),
        ({"from": "0:1,1:2", "partitions": "0"}, "partitions"),
        ({"on_gap": "skip"}, "on_gap"),
    ],
)
def test_bad_parameters_name_themselves(params: dict[str, str], parameter: str) -> None:
    def check() -> None:
        start_of(params)
        on_gap_param(params)

    with pytest.raises(GatewayError) as caught:
        check()
    assert caught.value.problem.extensions["parameter"] == parameter


def test_on_gap() -> None:
    assert on_gap_param({}) is False
    assert on_gap_param({"on_gap": "close"}) is True

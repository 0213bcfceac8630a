"""The pure parts of group mode: commit frames and the URL's group parameters."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.http.problems import GatewayError
from gateway.http.settings import Settings
from gateway.streams.groupmode import BadCommit, commit_frame, group_params

entries = st.lists(
    st.tuples(st.integers(0, 2**31), st.integers(0, 2**62), st.text(max_size=20)),
    min_size=1,
    max_size=20,
)


@given(entries, st.none() | st.integers(0, 1000))
def test_a_well_formed_commit_frame_reads_back_as_sent(
    offsets: list[tuple[int, int, str]], generation: int | None
) -> None:
    frame: dict[str, Any] = {
        "type": "commit",
        "offsets": [{"partition": p, "offset": o, "metadata": m} for p, o, m in offsets],
    }
    if generation is not None:
        frame["generation"] = generation
    parsed = commit_frame(frame)
    assert parsed.generation == generation
    assert list(parsed.offsets) == offsets


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "commit"},
        {"type": "commit", "offsets": []},
        {"type": "commit", "offsets": [{"partition": -1, "offset": 0}]},
        {"type": "commit", "offsets": [{"partition": 0, "offset": "1"}]},
        {"type": "commit", "offsets": [{"partition": 0, "offset": True}]},
        {"type": "commit", "offsets": [{"partition": 0, "offset": 1, "topic": "x"}]},
        {"type": "commit", "offsets": [{"partition": 0, "offset": 1, "metadata": 3}]},
        {"type": "commit", "generation": -1, "offsets": [{"partition": 0, "offset": 1}]},
        {"type": "commit", "member_id": "m", "offsets": [{"partition": 0, "offset": 1}]},
    ],
)
def test_a_malformed_commit_frame_is_refused(frame: dict[str, Any]) -> None:
    with pytest.raises(BadCommit):
        commit_frame(frame)


def test_group_params_take_a_session_and_member_and_refuse_start_positions() -> None:
    settings = Settings()
    assert group_params({}, settings) is None
    got = group_params({"group": "g", "member_id": "m-1", "session_timeout_ms": "2000"}, settings)
    assert got is not None
    assert (got.group, got.member_id, got.session_timeout_ms) == ("g", "m-1", 2000)
    default = group_params({"group": "g"}, settings)
    assert default is not None
    assert default.session_timeout_ms == settings.group_session_timeout_ms
    for bad in (
        {"group": "g", "from": "earliest"},
        {"group": "g", "partitions": "0"},
        {"group": "a/b"},
        {"group": "g", "member_id": "no spaces"},
        {"group": "g", "session_timeout_ms": "1"},
        {"group": "g", "session_timeout_ms": "x"},
    ):
        with pytest.raises(GatewayError):
            group_params(bad, settings)

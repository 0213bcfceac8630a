"""A request id is the client's when it is safe, else a new one; never a forged log line."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from gateway.http.headers import header_value
from gateway.http.request_ids import MAX_REQUEST_ID, request_id_from

SAFE = re.compile(rb"[A-Za-z0-9._:\-]{1,64}")
safe_ids = st.from_regex(SAFE, fullmatch=True).filter(lambda b: not b.startswith(b"tg_"))


@given(st.binary(max_size=200) | st.none())
def test_whatever_the_client_sends_the_id_is_short_and_safe_to_log(given: bytes | None) -> None:
    chosen = request_id_from(given)
    assert SAFE.fullmatch(chosen)
    assert len(chosen) <= MAX_REQUEST_ID


@given(safe_ids)
def test_a_safe_client_id_is_kept(given: bytes) -> None:
    assert request_id_from(given) == given


def test_unsafe_ids_are_replaced() -> None:
    for bad in (b"", b"a\r\nforged: line", b"x" * 65, b"tg_live_0123456789abcdef", b"a b", b"\xff"):
        chosen = request_id_from(bad)
        assert chosen != bad
        assert re.fullmatch(rb"[0-9a-f]{32}", chosen)
    assert request_id_from(None) != request_id_from(None)


def test_the_first_header_value_is_read() -> None:
    headers = [(b"host", b"h"), (b"x-request-id", b"one"), (b"x-request-id", b"two")]
    assert header_value(headers, b"x-request-id") == b"one"
    assert header_value(headers, b"absent") is None

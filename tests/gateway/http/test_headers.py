"""Header fields read from the scope are what Starlette's `headers.get` reads."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import HTTPConnection

from gateway.http.headers import header

NAMES = [b"content-type", b"content-length", b"idempotency-key", b"Content-Type", b"host"]


@given(
    st.lists(st.tuples(st.sampled_from(NAMES), st.binary(max_size=20)), max_size=6),
    st.sampled_from([n for n in NAMES if n.islower()]),
)
def test_a_field_is_read_as_starlette_reads_it(
    headers: list[tuple[bytes, bytes]], name: bytes
) -> None:
    conn = HTTPConnection({"type": "http", "headers": headers})
    assert header(conn, name) == conn.headers.get(name.decode())

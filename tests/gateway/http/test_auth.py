"""The credential of a request, read as Starlette would read it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import HTTPConnection

from gateway.http.auth import authorization_of


@given(
    st.lists(
        st.tuples(
            st.sampled_from([b"authorization", b"host", b"x-authorization", b"Authorization"]),
            st.binary(max_size=20),
        ),
        max_size=4,
    )
)
def test_the_authorization_field_is_read_as_starlette_reads_it(
    headers: list[tuple[bytes, bytes]],
) -> None:
    conn = HTTPConnection({"type": "http", "headers": headers})
    assert authorization_of(conn) == conn.headers.get("authorization")

"""The replies routes build: the same head a stock Starlette response would have."""

from __future__ import annotations

from starlette.responses import Response

from gateway.http.responses import JsonBytes


def test_a_json_bytes_reply_has_the_head_starlette_gives_it() -> None:
    body = b'{"records":[]}'
    stock = Response(body, media_type="application/json")
    fast = JsonBytes(body)
    assert (fast.status_code, fast.raw_headers, fast.body) == (
        stock.status_code,
        stock.raw_headers,
        stock.body,
    )
    assert fast.background is None

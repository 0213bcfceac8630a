"""Both log formats write one line a record, with every credential redacted."""

from __future__ import annotations

import io
import json
import logging

import pytest

from gateway.http.logs import handler_for

KEY = "tg_abcdefghijkl_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG_0a1b2c"
JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl"


def emit(log_format: str, *args: object, **extra: object) -> str:
    stream = io.StringIO()
    logger = logging.getLogger(f"tests.logs.{log_format}")
    logger.propagate = False
    handler = handler_for(log_format, stream)
    logger.addHandler(handler)
    try:
        logger.warning("got %s from %s", *args, extra=extra)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_credentials_never_reach_a_line(log_format: str) -> None:
    out = emit(
        log_format,
        f"Authorization: Bearer {KEY}",
        f"/x?access_token={JWT}&a=1\r\nINFO: forged",
        path=f"/no/such/{KEY}",
        header=JWT,
    )
    assert out.count("\n") == 1  # CR/LF escaped: one line
    assert KEY not in out
    assert JWT not in out
    assert KEY.split("_")[2] not in out  # nor the secret part of the key alone
    if log_format == "json":
        event = json.loads(out)
        assert event["level"] == "WARNING"
        assert event["logger"] == "tests.logs.json"
        assert event["path"] == "/no/such/tg_[redacted]"
        assert "time" in event
    else:
        assert out.startswith("WARNING: got Authorization: Bearer [redacted]")

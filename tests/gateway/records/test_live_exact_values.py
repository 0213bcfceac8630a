"""What is stored is what was sent: JSON numbers byte for byte, keys only as valid UTF-8,
on the C fast paths and on the reference paths."""

from __future__ import annotations

import httpx
import msgspec
import pytest

from tests.gateway.conftest import GatewayProcess

# Each value's text as sent, and as every fetch must return it: no rounding, no
# re-formatting (1.0 stays 1.0, not 1; -0.0 keeps its sign; 1e400 is not infinity).
EXACT = [
    b"18446744073709551616",
    b"-18446744073709551617",
    b"123456789012345678901234567890",
    b"1e400",
    b"-1E-400",
    b"-0.0",
    b"-0",
    b"1.0",
    b"1",
    b"1.10",
    b"0.1e-7",
    b"3.141592653589793238462643383279",
    b'{"b":1.0,"a":[18446744073709551616,-0.0]}',
]

_FETCHED = msgspec.json.Decoder(dict[str, list[dict[str, msgspec.Raw]] | int])


@pytest.fixture(scope="module")
def gateway(gateway_on_both_paths: GatewayProcess) -> GatewayProcess:
    return gateway_on_both_paths


def fetched_values(api: httpx.Client, topic: str) -> list[bytes]:
    r = api.get(f"/v1/topics/{topic}/partitions/0/records", params={"offset": "earliest"})
    assert r.status_code == 200, r.text
    records = _FETCHED.decode(r.content)["records"]
    assert isinstance(records, list)
    return [bytes(record["value"]) for record in records]


def test_json_numbers_are_stored_and_returned_byte_for_byte(
    api: httpx.Client, topic_name: str
) -> None:
    assert api.post("/v1/topics", json={"name": topic_name}).status_code == 201
    body = b'{"records": [' + b", ".join(b'{"value": %s}' % v for v in EXACT) + b"]}"
    r = api.post(
        f"/v1/topics/{topic_name}/records",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    ndjson = b"\n".join(b'{"value": %s}' % v for v in EXACT)
    r = api.post(
        f"/v1/topics/{topic_name}/records",
        content=ndjson,
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert r.status_code == 200, r.text
    assert fetched_values(api, topic_name) == EXACT + EXACT


def test_a_raw_json_body_keeps_its_numbers(api: httpx.Client, topic_name: str) -> None:
    assert api.post("/v1/topics", json={"name": topic_name}).status_code == 201
    for value in (b"18446744073709551616", b"1e400", b"-0.0"):
        r = api.post(
            f"/v1/topics/{topic_name}/records",
            content=value,
            headers={"Content-Type": "text/plain"},
        )
        assert r.status_code == 200, r.text
    assert fetched_values(api, topic_name) == [b"18446744073709551616", b"1e400", b"-0.0"]


def test_a_key_that_is_not_utf8_once_percent_decoded_is_refused(
    api: httpx.Client, topic_name: str
) -> None:
    assert api.post("/v1/topics", json={"name": topic_name}).status_code == 201
    url = f"/v1/topics/{topic_name}/records"
    plain = {"Content-Type": "text/plain"}
    for escaped in ("%ED%A0%80", "%FF", "%C3", "a%80b"):
        r = api.post(f"{url}?key={escaped}", content=b'"v"', headers=plain)
        assert r.status_code == 400, (escaped, r.text)
        problem = r.json()
        assert problem["type"] == "https://tidegate.dev/problems/invalid-parameter"
        assert problem["parameter"] == "key"
    fetch = f"/v1/topics/{topic_name}/partitions/0/records"
    r = api.get(f"{fetch}?offset=earliest&max_records=%ED%A0%80")
    assert (r.status_code, r.json()["parameter"]) == (400, "max_records")
    assert fetched_values(api, topic_name) == []  # nothing was stored
    # Valid UTF-8, escaped or not, is stored as sent.
    sent = {"%C3%BC+x": "ü x", "%F0%9F%8C%8A": "🌊", "plain": "plain"}
    for escaped in sent:
        r = api.post(f"{url}?key={escaped}", content=b'"v"', headers=plain)
        assert r.status_code == 200, r.text
    got = api.get(fetch, params={"offset": "earliest"}).json()["records"]
    assert [record["key"] for record in got] == list(sent.values())


def test_a_json_key_or_header_with_a_lone_surrogate_is_refused(
    api: httpx.Client, topic_name: str
) -> None:
    """`\\ud800` escapes no character: UTF-8 cannot hold it, so it cannot be stored as
    sent. The body is refused as malformed JSON, naming where."""
    assert api.post("/v1/topics", json={"name": topic_name}).status_code == 201
    for record in (
        b'{"key": "\\ud800", "value": 1}',
        b'{"value": 1, "headers": [["h", "\\udfff"]]}',
    ):
        r = api.post(
            f"/v1/topics/{topic_name}/records",
            content=b'{"records": [' + record + b"]}",
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == 400, r.text
        problem = r.json()
        assert problem["type"] == "https://tidegate.dev/problems/malformed-json"
        assert problem["line"] == 1
    assert fetched_values(api, topic_name) == []

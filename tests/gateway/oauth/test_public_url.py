"""TIDEGATE_PUBLIC_URL: what the metadata's absolute URLs start with, and the URL OAuth2
requests are held to for transport security (in process: the client is `testserver`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from pydantic import SecretStr, ValidationError
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.http.settings import Settings
from tests.gateway.conftest import BOOTSTRAP_KEY

GRANT = {"grant_type": "client_credentials"}
OPERATOR = ("bootstrap", BOOTSTRAP_KEY)


def client_for(tmp_path: Path, public_url: str | None = None) -> TestClient:
    key = SecretStr(BOOTSTRAP_KEY)
    settings = Settings(data_dir=tmp_path, bootstrap_key=key, public_url=public_url)
    return TestClient(create_app(settings))


@pytest.fixture
def behind_proxy(tmp_path: Path) -> Iterator[TestClient]:
    with client_for(tmp_path, public_url="https://stream.example.com/") as client:
        yield client


def test_the_metadata_names_the_public_url(behind_proxy: TestClient) -> None:
    doc = behind_proxy.get("/.well-known/oauth-authorization-server").json()
    assert doc["issuer"] == "https://stream.example.com"
    assert doc["token_endpoint"] == "https://stream.example.com/oauth/token"
    assert doc["jwks_uri"] == "https://stream.example.com/.well-known/jwks.json"
    metadata = AuthorizationServerMetadata(doc)
    for field in ("issuer", "token_endpoint", "jwks_uri"):
        getattr(metadata, f"validate_{field}")()  # https, as RFC 8414 wants
    r = behind_proxy.post("/oauth/token", data=GRANT, auth=OPERATOR)  # TLS ended in front
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "admin"


def test_without_it_plain_http_off_loopback_is_refused(tmp_path: Path) -> None:
    with client_for(tmp_path) as client:
        doc = client.get("/.well-known/oauth-authorization-server").json()
        assert doc["token_endpoint"] == "http://testserver/oauth/token"
        for path in ("/oauth/token", "/oauth/introspect", "/oauth/revoke"):
            r = client.post(path, data=GRANT | {"token": "x"}, auth=OPERATOR)
            assert (r.status_code, r.json()["error"]) == (400, "insecure_transport"), path


@pytest.mark.parametrize(
    "url", ["ftp://stream.example.com", "https://", "https://x.example?q=1", "stream.example.com"]
)
def test_a_public_url_must_be_an_http_url_without_query(url: str) -> None:
    with pytest.raises(ValidationError):
        Settings(public_url=url)

"""`/console/`: the files of web/ with their media types, a strict CSP, and revalidation;
nothing outside web/ is reachable; the page and its modules hold no inline script and
no way of turning text into markup."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from gateway.app import create_app
from gateway.console.headers import content_security_policy
from gateway.console.webroot import IN_REPOSITORY, MEDIA_TYPES, web_root
from gateway.http.settings import Settings

pytestmark = pytest.mark.anyio
WEB = IN_REPOSITORY


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(data_dir=tmp_path))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8080") as c:
        yield c


async def test_the_page_and_every_file_are_served_with_their_media_type(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/console/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.content == (WEB / "index.html").read_bytes()
    files = [p for p in WEB.rglob("*") if p.is_file()]
    assert {p.suffix for p in files} <= set(MEDIA_TYPES)
    for path in files:
        r = await client.get("/console/" + path.relative_to(WEB).as_posix())
        assert r.status_code == 200, path
        assert r.headers["content-type"] == MEDIA_TYPES[path.suffix]
        assert r.content == path.read_bytes()


async def test_console_without_a_slash_redirects(client: httpx.AsyncClient) -> None:
    r = await client.get("/console")
    assert (r.status_code, r.headers["location"]) == (308, "/console/")


async def test_every_response_carries_the_strict_policy(client: httpx.AsyncClient) -> None:
    for path in ("/console/", "/console/console.css", "/console/js/main.js"):
        r = await client.get(path)
        policy = r.headers["content-security-policy"]
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        assert directives["script-src"] == "'self'"
        assert directives["default-src"] == "'none'"
        assert directives["frame-ancestors"] == "'none'"
        assert directives["connect-src"] == "'self' ws://127.0.0.1:8080 wss://127.0.0.1:8080"
        assert "unsafe" not in policy
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"


def test_a_host_header_that_is_not_a_host_is_not_repeated_in_the_policy() -> None:
    assert content_security_policy("evil.example; script-src *").endswith("connect-src 'self'")
    assert content_security_policy(None).endswith("connect-src 'self'")
    assert "ws://[::1]:80 " in content_security_policy("[::1]:80")


async def test_files_are_revalidated_and_an_unchanged_one_costs_a_304(
    client: httpx.AsyncClient,
) -> None:
    first = await client.get("/console/js/main.js")
    assert first.headers["cache-control"] == "no-cache"
    etag = first.headers["etag"]
    again = await client.get("/console/js/main.js", headers={"If-None-Match": etag})
    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
    other = await client.get("/console/js/main.js", headers={"If-None-Match": '"other"'})
    assert other.status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/console/../pyproject.toml",
        "/console/js/..%2F..%2Fpyproject.toml",
        "/console/%2e%2e/setup.py",
        "/console/.hidden.js",
        "/console/js/missing.js",
        "/console/index.py",
        "/console/js/views/x.js",
        "/console/nope/index.html",
    ],
)
async def test_nothing_outside_the_console_files_is_served(
    client: httpx.AsyncClient, path: str
) -> None:
    r = await client.get(path)
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.inline: list[str] = []
        self.attributes: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attributes += [n for n, _ in attrs if n.startswith("on") or n == "style"]
        if tag == "script":
            self.scripts.append(dict(attrs))
            self._in_script = True
        if tag == "style":
            self.inline.append("<style>")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append(data)


def test_the_page_has_no_inline_script_style_or_handler() -> None:
    page = _Page()
    page.feed((WEB / "index.html").read_text())
    assert page.scripts == [{"type": "module", "src": "js/main.js"}]
    assert (page.inline, page.attributes) == ([], [])


MARKUP_SINKS = re.compile(
    r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|"
    r"setAttribute\(\s*[\"']on|\.on[a-z]+\s*="
)


def test_no_module_turns_text_into_markup_or_code() -> None:
    found = {
        p.name: MARKUP_SINKS.findall(p.read_text())
        for p in (WEB / "js").glob("*.js")
        if MARKUP_SINKS.search(p.read_text())
    }
    assert found == {}


def test_every_module_import_names_a_file_the_console_serves() -> None:
    """Modules sit side by side in js/ (the route serves one level) and import each
    other by relative path, which the browser resolves under /console/js/."""
    missing = [
        (p.name, target)
        for p in (WEB / "js").glob("*.js")
        for target in re.findall(r"^import .* from \"([^\"]+)\";$", p.read_text(), re.M)
        if not (target.startswith("./") and (WEB / "js" / target[2:]).is_file())
    ]
    assert missing == []


def test_the_console_is_found_from_a_source_checkout() -> None:
    assert web_root() == WEB


def test_the_first_start_banner_names_the_console(tmp_path: Path) -> None:
    from gateway.lifespan import banner

    settings = Settings(data_dir=tmp_path)
    assert f"Console:      {settings.base_url}/console/\n" in banner(settings, None)

"""Security headers on each surface (console, widget, API) and the Origin rule of `/mcp`, through
the real app in process; tests/console checks in a real browser that the console's policy holds
and breaks nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from openbotkit.engine import Engine
from openbotkit.server.app import create_app
from openbotkit.server.headers import API_CSP, CONSOLE_CSP
from openbotkit.server.mcp_http import origin_allowed
from openbotkit.services.secrets import create_secret
from openbotkit.settings import Settings
from tests.mcp_server.clients import INITIALIZE

CONSOLE = Path(__file__).resolve().parents[2] / "src" / "openbotkit" / "console"


def _client(tmp_path: Path, **fields: str) -> Iterator[tuple[TestClient, str]]:
    settings = Settings(home=tmp_path / "home", **fields)  # type: ignore[arg-type]
    engine = Engine(settings)
    try:
        with TestClient(create_app(settings, engine)) as client:
            yield client, create_secret(engine.runtime, "alice")[1]
    finally:
        engine.close()


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[TestClient, str]]:
    yield from _client(tmp_path)


@pytest.mark.parametrize("path", ["/", "/console/app.js", "/console/style.css"])
def test_the_console_allows_only_its_own_files_and_no_framing(
    client: tuple[TestClient, str], path: str
) -> None:
    resp = client[0].get(path)
    assert resp.status_code == 200
    assert resp.headers["content-security-policy"] == CONSOLE_CSP
    policy = dict(part.strip().split(" ", 1) for part in CONSOLE_CSP.split(";"))
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'"
    assert resp.headers["x-frame-options"] == "DENY"
    assert resp.headers["x-content-type-options"] == "nosniff"


def test_the_console_has_no_inline_script_or_style() -> None:
    """What the policy forbids, the console does not need: its page loads one module and one
    style sheet, and its modules build the DOM by API (no markup that could carry inline
    handlers or styles). The browser tests run it under the policy and see no violation."""
    page = (CONSOLE / "index.html").read_text()
    assert page.count("<script") == page.count('<script type="module" src="/console/') == 1
    assert "<style" not in page and " style=" not in page
    assert re.search(r"\son[a-z]+=", page) is None  # no inline event handler
    for source in [*CONSOLE.glob("*.js"), *CONSOLE.glob("pages/*.js")]:
        if source.name != "widget.js":  # runs in other sites' pages, under their policies
            text = source.read_text()
            assert "innerHTML" not in text and "eval(" not in text, source.name


def test_the_widget_script_loads_on_any_site(client: tuple[TestClient, str]) -> None:
    resp = client[0].get("/widget.js", headers={"Origin": "https://shop.example"})
    assert resp.status_code == 200
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["access-control-allow-origin"] == "*"
    assert resp.headers["cross-origin-resource-policy"] == "cross-origin"
    assert "x-frame-options" not in resp.headers
    assert "content-security-policy" not in resp.headers


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/v1/bot/list", 200),
        ("GET", "/api/v1/bot/nope/fetch", 404),
        ("GET", "/v1/no/such/route", 404),
        ("GET", "/api/v1/openapi.json", 200),
        ("GET", "/healthz", 200),
        ("POST", "/mcp", 200),
    ],
)
def test_api_answers_are_sandboxed_and_unframeable(
    client: tuple[TestClient, str], method: str, path: str, status: int
) -> None:
    http, token = client
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"}
    body = INITIALIZE if path == "/mcp" else None
    resp = http.request(method, path, headers=headers, json=body)
    assert resp.status_code == status
    assert resp.headers["content-security-policy"] == API_CSP
    assert resp.headers["x-frame-options"] == "DENY"
    assert resp.headers["x-content-type-options"] == "nosniff"


def test_a_widget_preflight_gets_the_headers_too(client: tuple[TestClient, str]) -> None:
    resp = client[0].options(
        "/api/v1/conversation/create",
        headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"},
    )
    assert resp.status_code == 204
    assert resp.headers["x-content-type-options"] == "nosniff"


def test_a_downloaded_html_file_runs_no_script(client: tuple[TestClient, str]) -> None:
    """An uploaded page served from this origin would otherwise run with the console's reach."""
    http, token = client
    auth = {"Authorization": f"Bearer {token}"}
    made = http.post("/api/v1/file/create", headers=auth, json={"name": "x.html"}).json()
    page = "data:text/html,<script>alert(1)</script>"
    uploaded = http.post(f"/api/v1/file/{made['id']}/upload", headers=auth, json={"file": page})
    assert uploaded.status_code == 200, uploaded.text
    resp = http.get(f"/api/v1/file/{made['id']}/download", headers=auth)
    assert resp.status_code == 200 and b"<script>" in resp.content
    assert "sandbox" in resp.headers["content-security-policy"]
    assert resp.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("origin", "host", "allowed"),
    [
        (None, "evil.example", True),  # no browser
        ("http://127.0.0.1:8000", "127.0.0.1:8000", True),
        ("http://localhost:8000", "localhost:8000", True),
        ("http://[::1]:8000", "[::1]:8000", True),
        ("https://203.0.113.5", "203.0.113.5", True),  # default ports agree
        ("https://203.0.113.5", "203.0.113.5:80", False),
        ("http://evil.example:8000", "evil.example:8000", False),  # a rebound name
        ("http://evil.example", "127.0.0.1:8000", False),
        ("http://localhost:8001", "localhost:8000", False),
        ("null", "127.0.0.1:8000", False),
        ("http://127.0.0.1:x", "127.0.0.1:8000", False),
        ("http://127.0.0.1:8000", None, False),
        ("https://app.example", "api.example", True),  # listed
        ("https://app.example/", "api.example", True),
    ],
)
def test_which_origins_may_call_mcp(origin: str | None, host: str | None, allowed: bool) -> None:
    assert origin_allowed(origin, host, ["https://app.example"]) is allowed


def test_mcp_admits_the_origins_of_obk_cors_origins(tmp_path: Path) -> None:
    for http, token in _client(tmp_path, cors_origins="https://app.example"):
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json, text/event-stream",
        }
        listed = http.post(
            "/mcp", json=INITIALIZE, headers={**headers, "Origin": "https://app.example"}
        )
        other = http.post(
            "/mcp", json=INITIALIZE, headers={**headers, "Origin": "https://x.example"}
        )
        assert (listed.status_code, other.status_code) == (200, 403)
        assert other.json()["code"] == "NOT_AUTHORIZED"
        # Refused before the secret is looked at: no hint whether a secret is live.
        anonymous = http.post("/mcp", json=INITIALIZE, headers={"Origin": "https://x.example"})
        assert anonymous.status_code == 403

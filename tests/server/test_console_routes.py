"""The console's static files, the token and usage-series actions it relies on, and the
one-time sign-in link of `obk serve --open`."""

from __future__ import annotations

import asyncio
import fnmatch
import os
import re
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from openbotkit.engine import Engine
from openbotkit.ids import now_ms
from openbotkit.server.app import create_app
from openbotkit.services.secrets import create_secret
from openbotkit.settings import Settings
from tests.reliability.serving import running, serve_args
from tests.server.serving import free_port

CONSOLE = Path(__file__).resolve().parents[2] / "src" / "openbotkit" / "console"
ROOT = Path(__file__).resolve().parents[2]


class Client:
    def __init__(self, engine: Engine, account: str = "alice") -> None:
        self.loop = asyncio.new_event_loop()
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(engine.settings, engine)),
            base_url="http://testserver",
        )
        self.token = create_secret(engine.runtime, account)[1]

    def request(
        self, method: str, path: str, token: str | None = None, **kw: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.token}", **kw.pop("headers", {})}
        return self.loop.run_until_complete(self.http.request(method, path, headers=headers, **kw))

    def close(self) -> None:
        self.loop.run_until_complete(self.http.aclose())
        self.loop.close()


@pytest.fixture
def client(settings: Settings) -> Iterator[Client]:
    engine = Engine(settings)
    c = Client(engine)
    yield c
    c.close()
    engine.close()  # its pooled connections too (PostgreSQL warns of any left open)


def test_the_console_page_its_modules_and_the_widget_are_served(client: Client) -> None:
    page = client.request("GET", "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/console/app.js">' in page.text
    # Every module the console imports is served, as JavaScript.
    pending, seen = ["app.js"], set()
    while pending:
        name = pending.pop()
        seen.add(name)
        resp = client.request("GET", f"/console/{name}")
        assert resp.status_code == 200, name
        assert "javascript" in resp.headers["content-type"]
        base = Path(name).parent
        for ref in re.findall(r"from '(\.[^']+)'", resp.text):
            target = os.path.normpath(base / ref)
            if target not in seen:
                pending.append(target)
    assert {"app.js", "api.js", "ui.js", "pages/playground.js"} <= seen
    assert (
        client.request("GET", "/console/style.css").headers["content-type"].startswith("text/css")
    )
    widget = client.request("GET", "/widget.js")
    assert widget.status_code == 200 and "Open chat" in widget.text
    # API paths are untouched: an unknown one is still a JSON 404, a wrong verb a 405.
    missing = client.request("GET", "/api/v1/nothing/here")
    assert missing.status_code == 404 and missing.json()["code"] == "NOT_FOUND"
    assert client.request("GET", "/console/nothing.js").status_code == 404
    assert client.request("POST", "/api/v1/bot/list").status_code == 405


def test_every_console_file_is_package_data() -> None:
    """A wheel carries what pyproject.toml lists: every console file must match a pattern."""
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["openbotkit"]
    files = [p.relative_to(CONSOLE.parent).as_posix() for p in CONSOLE.rglob("*") if p.is_file()]
    assert files
    for name in files:
        assert any(fnmatch.fnmatch(name, pat) for pat in patterns), name


def test_tokens_are_created_listed_and_revoked_within_the_account(
    client: Client, settings: Settings
) -> None:
    made = client.request("POST", "/api/v1/token/create", json={"name": "ci"}).json()
    assert made["token"].startswith("obk_")
    assert client.request("GET", "/api/v1/bot/list", token=made["token"]).status_code == 200
    listed = client.request("GET", "/api/v1/token/list").json()["items"]
    mine = next(k for k in listed if k["id"] == made["id"])
    assert mine["name"] == "ci" and made["token"].startswith(mine["prefix"])
    assert "token" not in mine and "revokedAt" not in mine
    assert len(listed) == 2  # the client's own key too

    # Another account neither sees nor revokes it.
    other = create_secret(client_engine(client).runtime, "bob")[1]
    assert (
        client.request("GET", "/api/v1/token/list", token=other).json()["items"][0]["id"]
        != made["id"]
    )
    foreign = client.request("POST", f"/api/v1/token/{made['id']}/revoke", token=other)
    assert foreign.status_code == 404

    revoked = client.request("POST", f"/api/v1/token/{made['id']}/revoke", json={}).json()
    assert revoked["id"] == made["id"] and revoked["revokedAt"] <= now_ms()
    refused = client.request("GET", "/api/v1/bot/list", token=made["token"])
    assert refused.status_code == 401
    long_name = client.request("POST", "/api/v1/token/create", json={"name": "x" * 192})
    assert long_name.status_code == 400 and long_name.json()["details"][0]["pointer"] == "/name"


@pytest.mark.parametrize(
    ("field", "value"), [("expiresIn", 2**63), ("budgetTokens", 2**63), ("expiresIn", 0)]
)
def test_token_limits_out_of_range_name_the_field(client: Client, field: str, value: int) -> None:
    resp = client.request("POST", "/api/v1/token/create", json={field: value})
    assert resp.status_code == 400, resp.text
    assert field in resp.json()["message"]
    assert len(client.request("GET", "/api/v1/token/list").json()["items"]) == 1  # none made


def test_a_token_limited_to_a_bot_talks_to_it_and_manages_no_keys(client: Client) -> None:
    bot = client.request("POST", "/api/v1/bot/create", json={"name": "Front desk"}).json()["id"]
    made = client.request(
        "POST",
        "/api/v1/token/create",
        json={"name": "widget", "scope": "write", "bots": [bot], "budgetTokens": 500},
    ).json()
    limited = made["token"]
    conv = client.request("POST", "/api/v1/conversation/create", token=limited, json={"botId": bot})
    assert conv.status_code == 200
    for method, path in [
        ("GET", "/api/v1/bot/list"),
        ("GET", "/api/v1/token/list"),
        ("POST", "/api/v1/token/create"),
        ("POST", f"/api/v1/token/{made['id']}/revoke"),
    ]:
        refused = client.request(method, path, token=limited, json={} if method == "POST" else None)
        assert refused.status_code == 403, path
        assert refused.json()["code"] == "SCOPE_MISSING"
    # A write key without resource limits may not mint keys either (it would mint a full one).
    writer = client.request("POST", "/api/v1/token/create", json={"scope": "write"}).json()
    refused = client.request("POST", "/api/v1/token/create", token=writer["token"], json={})
    assert refused.status_code == 403
    listed = client.request("GET", "/api/v1/token/list").json()["items"]
    shown = next(k for k in listed if k["id"] == made["id"])
    assert shown["scope"] == "write" and shown["bots"] == [bot] and shown["datasets"] == []
    assert shown["budgetTokens"] == 500 and shown["tokensUsed"] == 0
    unknown = client.request("POST", "/api/v1/token/create", json={"bots": ["nope"]})
    assert unknown.status_code == 404
    expiring = client.request("POST", "/api/v1/token/create", json={"expiresIn": 3600}).json()
    item = next(
        k
        for k in client.request("GET", "/api/v1/token/list").json()["items"]
        if k["id"] == expiring["id"]
    )
    assert 3_590_000 < item["expiresAt"] - now_ms() <= 3_600_000


def client_engine(client: Client) -> Engine:
    transport = client.http._transport
    assert isinstance(transport, httpx.ASGITransport)
    engine: Engine = transport.app.state.engine  # type: ignore[attr-defined]
    return engine


def test_usage_series_has_a_point_per_day_and_todays_counts(client: Client) -> None:
    conv = client.request("POST", "/api/v1/conversation/create", json={}).json()
    for text in ("one", "two"):
        client.request(
            "POST",
            f"/api/v1/conversation/{conv['id']}/message/create",
            json={"type": "user", "text": text},
        )
    series = client.request("GET", "/api/v1/usage/series/fetch", params={"days": 7}).json()
    day = 86_400_000
    for metric in ("tokens", "conversations", "messages"):
        points = series[metric]
        assert len(points) == 7
        assert [p["date"] for p in points] == [
            now_ms() // day * day - (6 - i) * day for i in range(7)
        ]
    assert series["conversations"][-1]["total"] == 1
    assert series["messages"][-1]["total"] == 2
    assert sum(p["total"] for p in series["messages"][:-1]) == 0
    totals = client.request("GET", "/api/v1/usage/fetch").json()
    assert totals["messages"] == series["messages"][-1]["total"]
    assert len(client.request("GET", "/api/v1/usage/series/fetch").json()["tokens"]) == 90
    bad = client.request("GET", "/api/v1/usage/series/fetch", params={"days": 0})
    assert bad.status_code == 400 and bad.json()["details"][0]["pointer"] == "/days"


def test_serve_open_prints_a_link_that_signs_in_the_local_account(tmp_path: Path) -> None:
    env = {**os.environ, "OBK_HOME": str(tmp_path / "home")}
    port = free_port()
    args = serve_args(port, "--no-worker", "--open")
    ready = f"http://127.0.0.1:{port}/"
    with running(args, env, tmp_path / "serve.log", ready, stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        link = re.search(r"(http://127\.0\.0\.1:\d+/)#signin=([0-9a-z]+)\.(obk_\S+)", line)
        assert link, line
        origin, token = link[1], link[3]
        assert origin == ready
        page = httpx.get(origin)
        assert page.status_code == 200 and "openbotkit" in page.text
        team = httpx.get(origin + "api/v1/team/list", headers={"Authorization": f"Bearer {token}"})
        assert team.json()["items"][0]["name"] == "local"

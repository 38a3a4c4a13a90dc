"""The console's static files, the token and usage-series actions it relies on, and the
one-time sign-in link of `obk serve --open`."""

from __future__ import annotations

import asyncio
import fnmatch
import os
import re
import subprocess
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from openbotkit.engine import Engine
from openbotkit.ids import now_ms
from openbotkit.server.app import create_app
from openbotkit.services import consoles
from openbotkit.services.secrets import create_secret, list_secrets
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


def test_a_token_limited_to_a_bot_talks_to_it_and_makes_no_wider_keys(client: Client) -> None:
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
    # A write key without resource limits may not mint a full key (the default scope).
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
        # The link is no API key: the console trades it, once, for a session of the local account.
        auth = {"Authorization": f"Bearer {token}"}
        assert httpx.get(origin + "api/v1/team/list", headers=auth).status_code == 401
        session = httpx.post(origin + "console/signin", json={"link": f"{link[2]}.{token}"})
        assert session.status_code == 200, session.text
        own = {"Authorization": f"Bearer {session.json()['token']}"}
        team = httpx.get(origin + "api/v1/team/list", headers=own)
        assert team.json()["items"][0]["name"] == "local"


class Console:
    """The console's session routes, called as the console's page calls them."""

    def __init__(self, client: Client, engine: Engine) -> None:
        self.client = client
        self.engine = engine

    def link(self) -> str:
        link_id, token = consoles.create_link(self.engine.runtime, "local")
        return f"{link_id}.{token}"

    def sign_in(self, link: str) -> httpx.Response:
        http = self.client.http
        return self.client.loop.run_until_complete(
            http.post("/console/signin", json={"link": link})
        )

    def sign_out(self, token: str) -> httpx.Response:
        return self.client.request("POST", "/console/signout", token)

    def team(self, token: str) -> httpx.Response:
        return self.client.request("GET", "/api/v1/team/list", token)


@pytest.fixture
def console(settings: Settings) -> Iterator[Console]:
    engine = Engine(settings)
    c = Client(engine, "local")
    yield Console(c, engine)
    c.close()
    engine.close()


def test_sign_in_link_works_once_and_is_no_key(console: Console) -> None:
    link = console.link()
    link_token = link.split(".", 1)[1]
    assert console.team(link_token).status_code == 401  # a link authenticates nothing itself
    first = console.sign_in(link)
    assert first.status_code == 200, first.text
    session = first.json()
    assert session["token"].startswith("obk_") and session["token"] != link_token
    hours = (session["expiresAt"] - now_ms()) / 3_600_000
    assert 11.9 < hours <= 12  # OBK_CONSOLE_SESSION_S's default
    assert console.team(session["token"]).json()["items"][0]["name"] == "local"
    again = console.sign_in(link)
    assert again.status_code == 401
    assert "links work once" in again.json()["message"]
    kinds = {s.name for s in list_secrets(console.engine.runtime, "local") if s.revoked_at}
    assert kinds == {consoles.LINK_NAME}  # the link is spent, the session is not


def test_sign_in_link_is_short_lived(console: Console) -> None:
    link = console.link()
    with console.engine.store.session() as session:
        expire = sa.text("UPDATE secrets SET expires_at = :past WHERE kind = 'signin'")
        session.execute(expire, {"past": now_ms() - 1})
    assert console.sign_in(link).status_code == 401
    assert (consoles.SIGNIN_LINK_S, console.engine.settings.console_session_s) == (600, 43_200)


def test_an_api_key_in_a_sign_in_link_signs_no_one_in(console: Console) -> None:
    """Login CSRF: a page sends a visitor to `#signin=ID.KEY` with a key of the attacker's own
    account; the console must not sign the visitor in to it."""
    info, key = create_secret(console.engine.runtime, "mallory")
    for link in (f"{info.id}.{key}", f"x.{key}", key, "", "a.b"):
        resp = console.sign_in(link)
        assert resp.status_code in (400, 401), (link, resp.text)
    assert console.team(key).status_code == 200  # the key itself is left as it was
    bad = console.client.loop.run_until_complete(
        console.client.http.post("/console/signin", json={"link": 5})
    )
    assert bad.status_code == 400 and bad.json()["details"][0]["pointer"] == "/link"


def test_sign_out_revokes_the_console_session_and_only_that(console: Console) -> None:
    token = console.sign_in(console.link()).json()["token"]
    assert console.team(token).status_code == 200  # now remembered by the process for 5 s
    out = console.sign_out(token)
    assert out.status_code == 200 and out.json() == {"revoked": True}
    resp = console.team(token)
    assert resp.status_code == 401 and resp.json()["code"] == "NOT_AUTHENTICATED"
    # Signing out with an API key typed into the console forgets it; the key stays valid.
    typed = console.client.token
    assert console.sign_out(typed).json() == {"revoked": False}
    assert console.team(typed).status_code == 200


def test_console_sessions_expire(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "h", console_session_s=1)
    engine = Engine(settings)
    c = Client(engine, "local")
    try:
        console = Console(c, engine)
        made = console.sign_in(console.link()).json()
        assert made["expiresAt"] - now_ms() <= 1000
        assert console.team(made["token"]).status_code == 200
        time.sleep(max(0.0, (made["expiresAt"] - now_ms()) / 1000) + 0.05)
        resp = console.team(made["token"])
        assert resp.status_code == 401 and resp.json()["code"] == "CREDENTIAL_EXPIRED"
    finally:
        c.close()
        engine.close()

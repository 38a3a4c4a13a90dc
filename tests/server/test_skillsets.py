"""Skillsets, abilities and ability secrets over the real server (uvicorn on loopback): round
trips, the secret value in no response, error or log line, and what limited keys may not do."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from openbotkit.access import Effect
from openbotkit.engine import Engine
from openbotkit.server.app import create_app
from openbotkit.services.secrets import create_secret
from tests.server.serving import serve_in_thread

VALUE = "ghp_9xVf2Kq-the-value-that-must-never-come-back"
INSTRUCTION = """```fetch
method: GET
url: https://api.example.com/orders/$[orderId! euc|the order number]
headers:
  Authorization: ${SECRET_DEFAULT}
```"""


class Server:
    def __init__(self, origin: str, engine: Engine) -> None:
        self.http = httpx.Client(base_url=origin + "/api/v1", timeout=30)
        self.engine = engine
        self.admin = create_secret(engine.runtime, "alice")[1]
        self.seen: list[str] = []  # every response body, to search for the value

    def key(self, **limits: Any) -> str:
        return create_secret(self.engine.runtime, "alice", **limits)[1]

    def call(self, method: str, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.admin}", **kw.pop("headers", {})}
        resp = self.http.request(method, path, headers=headers, **kw)
        self.seen.append(resp.text)
        return resp

    def ok(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        resp = self.call(method, path, json=body) if method == "POST" else self.call(method, path)
        assert resp.status_code == 200, resp.text
        data: dict[str, Any] = resp.json()
        return data


@pytest.fixture
def server(engine: Engine) -> Iterator[Server]:
    with serve_in_thread(create_app(engine.settings, engine)) as origin:
        srv = Server(origin, engine)
        yield srv
        srv.http.close()


def test_round_trip_and_the_value_never_comes_back(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = server.ok("POST", "/secret/create", {"name": "gh", "type": "bearer", "value": VALUE})
    skillset = server.ok("POST", "/skillset/create", {"name": "Orders", "meta": {"a": 1}})["id"]
    body = {
        "name": "order",
        "description": "Look up an order",
        "instruction": INSTRUCTION,
        "linkedSecretId": secret["id"],
    }
    ability = server.ok("POST", f"/skillset/{skillset}/ability/create", body)["id"]
    base = f"/skillset/{skillset}/ability"
    fetched = server.ok("GET", f"{base}/{ability}/fetch")
    assert fetched["instruction"] == INSTRUCTION and fetched["linkedSecretId"] == secret["id"]
    assert server.ok("GET", f"{base}/list")["items"][0]["id"] == ability
    assert server.ok("GET", f"/skillset/{skillset}/fetch")["name"] == "Orders"
    assert server.ok("GET", "/skillset/list")["items"][0]["id"] == skillset
    server.ok("POST", f"/skillset/{skillset}/update", {"name": "Orders 2"})
    server.ok("POST", f"{base}/{ability}/update", {"description": "Find an order"})
    bot = server.ok("POST", "/bot/create", {"skillsetId": skillset})["id"]
    assert server.ok("GET", f"/bot/{bot}/fetch")["skillsetId"] == skillset
    # Every way a secret is read or changed, and its errors.
    shown = [
        server.ok("GET", f"/secret/{secret['id']}/fetch"),
        server.ok("GET", "/secret/list"),
        server.ok("POST", f"/secret/{secret['id']}/update", {"value": VALUE, "name": "gh2"}),
    ]
    assert shown[0]["type"] == "bearer" and "value" not in shown[0]
    assert (
        server.call("POST", "/secret/create", json={"type": "basic", "value": VALUE}).status_code
        == 400
    )
    too_long = server.call("POST", "/secret/create", json={"value": VALUE * 1000})
    assert too_long.status_code == 400
    unknown = server.call("POST", "/secret/create", json={"value": VALUE, "extra": VALUE})
    assert unknown.status_code == 400
    listed = server.call("GET", "/secret/list", headers={"Accept": "application/jsonl"})
    assert listed.status_code == 200
    in_use = server.call("POST", f"/secret/{secret['id']}/delete", json={})
    assert in_use.status_code == 409
    server.ok("POST", f"/skillset/{skillset}/delete", {})
    assert server.call("GET", f"{base}/{ability}/fetch").status_code == 404
    server.ok("POST", f"/secret/{secret['id']}/delete", {})
    assert all(VALUE not in text for text in server.seen)
    assert VALUE not in json.dumps([r.getMessage() for r in caplog.records])
    assert VALUE not in caplog.text


def test_malformed_instruction_is_400_naming_the_line(server: Server) -> None:
    skillset = server.ok("POST", "/skillset/create", {})["id"]
    resp = server.call(
        "POST",
        f"/skillset/{skillset}/ability/create",
        json={"instruction": "Intro\n```fetch\nmethod: GET\nurl: https://h/$[id! euc|the id\n```"},
    )
    assert resp.status_code == 400
    body = resp.json()
    assert "instruction line 4" in body["message"], body


def test_bot_skillset_of_another_account_is_not_found(server: Server) -> None:
    theirs = create_secret(server.engine.runtime, "bob")[1]
    skillset = server.call("POST", "/skillset/create", theirs, json={}).json()["id"]
    resp = server.call("POST", "/bot/create", json={"skillsetId": skillset})
    assert resp.status_code == 404 and "skillsetId" in resp.json()["message"]
    assert server.call("GET", f"/skillset/{skillset}/fetch").status_code == 404


def _refused(resp: httpx.Response) -> None:
    assert resp.status_code == 403, resp.text
    assert resp.json()["code"] == "SCOPE_MISSING"


def test_limited_keys_never_reach_skillsets_abilities_or_secrets(server: Server) -> None:
    bot = server.ok("POST", "/bot/create", {"name": "b"})["id"]
    dataset = server.ok("POST", "/dataset/create", {})["id"]
    secret = server.ok("POST", "/secret/create", {"value": VALUE})["id"]
    skillset = server.ok("POST", "/skillset/create", {})["id"]
    ability = server.ok("POST", f"/skillset/{skillset}/ability/create", {"name": "a"})["id"]
    keys = {
        "bot-limited destructive": server.key(bots=[bot], datasets=[dataset]),
        "public (bot-limited write)": server.key(bots=[bot], datasets=[], scope=Effect.WRITE),
        "dataset-limited read": server.key(bots=[], datasets=[dataset], scope=Effect.READ),
    }
    conv = server.ok("POST", "/conversation/create", {"botId": bot})["id"]
    session = server.ok("POST", f"/conversation/{conv}/session/create", {})["token"]
    keys["session token"] = session
    calls = [
        ("GET", "/skillset/list", None),
        ("GET", f"/skillset/{skillset}/fetch", None),
        ("POST", "/skillset/create", {}),
        ("POST", f"/skillset/{skillset}/update", {"name": "x"}),
        ("POST", f"/skillset/{skillset}/delete", {}),
        ("GET", f"/skillset/{skillset}/ability/list", None),
        ("GET", f"/skillset/{skillset}/ability/{ability}/fetch", None),
        ("POST", f"/skillset/{skillset}/ability/create", {"linkedBotId": bot}),
        ("POST", f"/skillset/{skillset}/ability/{ability}/update", {"linkedBotId": bot}),
        ("POST", f"/skillset/{skillset}/ability/{ability}/delete", {}),
        ("GET", "/secret/list", None),
        ("GET", f"/secret/{secret}/fetch", None),
        ("POST", "/secret/create", {"value": "x"}),
        ("POST", f"/secret/{secret}/update", {"value": "x"}),
        ("POST", f"/secret/{secret}/delete", {}),
        # Naming a skillset on its own bot or a conversation is refused too.
        ("POST", f"/bot/{bot}/update", {"skillsetId": skillset}),
        ("POST", "/conversation/create", {"botId": bot, "skillsetId": skillset}),
    ]
    for label, token in keys.items():
        for method, path, body in calls:
            kw = {"json": body} if method == "POST" else {}
            resp = server.call(method, path, token, **kw)
            assert resp.status_code == 403, (label, method, path, resp.text)
            _refused(resp)
    # Nothing changed: everything is still there, unchanged.
    assert server.ok("GET", f"/skillset/{skillset}/ability/{ability}/fetch")["name"] == "a"
    assert "skillsetId" not in server.ok("GET", f"/bot/{bot}/fetch")
    assert server.ok("GET", f"/secret/{secret}/fetch")["type"] == "plain"
    # An unlimited read key reads them (never the value) and changes nothing.
    reader = server.key(scope=Effect.READ)
    assert server.call("GET", f"/secret/{secret}/fetch", reader).status_code == 200
    _refused(server.call("POST", "/skillset/create", reader, json={}))
    assert all(VALUE not in text for text in server.seen)

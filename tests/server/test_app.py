"""The server in-process (httpx over ASGI): wire details the SDK suites do not reach."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from openbotkit.engine import Engine
from openbotkit.errors import ERROR_CLASSES, ObkError
from openbotkit.server.app import create_app
from openbotkit.server.errors import error_body
from openbotkit.services.secrets import create_secret


class Client:
    """A synchronous face over httpx.AsyncClient + ASGITransport, one event loop per test."""

    def __init__(self, engine: Engine) -> None:
        self.loop = asyncio.new_event_loop()
        app = create_app(engine.settings, engine)
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        )
        self.token = create_secret(engine.runtime, "alice")[1]

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kw.pop("headers", {})}
        return self.loop.run_until_complete(self.http.request(method, path, headers=headers, **kw))

    def close(self) -> None:
        self.loop.run_until_complete(self.http.aclose())
        self.loop.close()


@pytest.fixture
def client(engine: Engine) -> Iterator[Client]:
    c = Client(engine)
    yield c
    c.close()


def test_both_prefixes_serve_the_same_routes(client: Client) -> None:
    bot = client.request("POST", "/v1/bot/create", json={"name": "x"}).json()
    assert client.request("GET", f"/api/v1/bot/{bot['id']}/fetch").json()["name"] == "x"
    assert client.request("GET", f"/v1/bot/{bot['id']}/fetch").json()["name"] == "x"


def test_json_content_type_and_no_empty_bodies(client: Client) -> None:
    resp = client.request("POST", "/api/v1/bot/create", content=b"")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/json")
    bot_id = resp.json()["id"]
    resp = client.request("POST", f"/api/v1/bot/{bot_id}/delete", json={})
    assert resp.json() == {"id": bot_id}


def test_query_meta_forms_and_unknown_params(client: Client) -> None:
    a = client.request("POST", "/api/v1/bot/create", json={"meta": {"env": "p", "on": True}}).json()
    client.request("POST", "/api/v1/bot/create", json={"meta": {"env": "d"}})
    for query in ("meta.env=p", "meta[env]=p", "meta.on=true", "meta.env=p&botId=ignored&x=1"):
        items = client.request("GET", f"/api/v1/bot/list?{query}").json()["items"]
        assert [b["id"] for b in items] == [a["id"]], query


def test_take_is_clamped_and_junk_is_default(client: Client) -> None:
    for _ in range(3):
        client.request("POST", "/api/v1/bot/create", json={})
    assert len(client.request("GET", "/api/v1/bot/list?take=1").json()["items"]) == 1
    assert len(client.request("GET", "/api/v1/bot/list?take=1000").json()["items"]) == 3
    assert (
        len(client.request("GET", "/api/v1/bot/list?take=abc&order=sideways").json()["items"]) == 3
    )


def test_jsonl_list_walks_pages_with_no_blank_lines(client: Client) -> None:
    ids = [client.request("POST", "/api/v1/bot/create", json={}).json()["id"] for _ in range(5)]
    resp = client.request(
        "GET", "/api/v1/bot/list?take=4&order=asc", headers={"Accept": "application/jsonl"}
    )
    assert resp.headers["content-type"].startswith("application/jsonl")
    lines = resp.text.split("\n")
    assert lines[-1] == "" and all(lines[:-1])
    events = [json.loads(line) for line in lines[:-1]]
    assert {e["type"] for e in events} == {"item"}
    assert [e["data"]["id"] for e in events] == ids[:4]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("POST", "/api/v1/bot/create", {"content": b"{oops"}, 400, "BAD_REQUEST"),
        ("POST", "/api/v1/bot/create", {"content": b"[1]"}, 400, "BAD_REQUEST"),
        ("POST", "/api/v1/bot/create", {"content": b"[" * 100_000}, 400, "BAD_REQUEST"),
        ("POST", "/api/v1/bot/create", {"content": b'{"name": "\\ud800"}'}, 400, "BAD_REQUEST"),
        ("POST", "/api/v1/bot/create", {"content": b'{"name": NaN}'}, 400, "BAD_REQUEST"),
        ("POST", "/api/v1/bot/create", {"json": {"nope": 1}}, 400, "BAD_REQUEST"),
        ("GET", "/api/v1/bot/create", {}, 405, "METHOD_NOT_ALLOWED"),
        ("GET", "/api/v1/no/such/route", {}, 404, "NOT_FOUND"),
        ("GET", "/api/v1/bot/missing/fetch", {}, 404, "NOT_FOUND"),
        ("GET", "/api/v1/bot/list", {"headers": {"Accept": "text/html"}}, 400, "BAD_REQUEST"),
        (
            "GET",
            "/api/v1/dataset/missing/record/list",
            {"headers": {"Accept": "application/jsonl"}},
            404,
            "NOT_FOUND",
        ),
        (
            "GET",
            "/api/v1/bot/list",
            {"headers": {"Authorization": "Bearer x"}},
            401,
            "NOT_AUTHENTICATED",
        ),
        ("GET", "/api/v1/bot/list", {"headers": {"Authorization": ""}}, 401, "NOT_AUTHENTICATED"),
    ],
)
def test_errors_are_json_with_spec_codes(
    client: Client, method: str, path: str, kwargs: dict[str, Any], status: int, code: str
) -> None:
    resp = client.request(method, path, **kwargs)
    assert resp.status_code == status
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert body["code"] == code and body["message"]


def test_body_with_a_byte_order_mark_is_json(client: Client) -> None:
    resp = client.request("POST", "/api/v1/bot/create", content=b'\xef\xbb\xbf{"name": "b"}')
    assert resp.status_code == 200


@pytest.mark.parametrize("accept", ["application/octet-stream", "text/plain", "*/*"])
def test_download_answers_any_accept_with_the_bytes(client: Client, accept: str) -> None:
    file_id = client.request("POST", "/api/v1/file/create", json={"name": "a.txt"}).json()["id"]
    data = {"file": "data:text/plain;base64,aGk="}
    client.request("POST", f"/api/v1/file/{file_id}/upload", json=data)
    resp = client.request("GET", f"/api/v1/file/{file_id}/download", headers={"Accept": accept})
    assert resp.status_code == 200 and resp.content == b"hi"


def test_bad_input_names_the_field(client: Client) -> None:
    body = client.request("POST", "/api/v1/dataset/create", json={"searchMaxRecords": 0}).json()
    assert body["details"][0]["pointer"] == "/searchMaxRecords"
    assert "searchMaxRecords" in body["message"]


def test_oversized_body_is_refused_before_it_is_read(client: Client) -> None:
    resp = client.request("POST", "/api/v1/bot/create", content=b"x" * (9 * 1024 * 1024))
    assert resp.status_code == 429
    assert resp.headers["X-Failure-Code"] == "LIMITS_REACHED"


def test_token_scheme_is_accepted(client: Client) -> None:
    resp = client.request(
        "GET", "/api/v1/bot/list", headers={"Authorization": f"Token {client.token}"}
    )
    assert resp.status_code == 200


def test_openapi_lists_every_action(client: Client, engine: Engine) -> None:
    from openbotkit.actions import REGISTRY

    doc = client.request("GET", "/api/v1/openapi.json").json()
    operations = {op["operationId"] for methods in doc["paths"].values() for op in methods.values()}
    assert operations == {a.name for a in REGISTRY}
    assert doc["paths"]["/api/v1/bot/{botId}/update"]["post"]["parameters"][0]["name"] == "botId"


def test_openapi_document_is_valid_openapi_3_1(client: Client) -> None:
    doc = client.request("GET", "/v1/openapi.json").json()
    validate(doc)
    jsonl = doc["paths"]["/api/v1/bot/list"]["get"]["responses"]["200"]["content"]
    assert set(jsonl) == {"application/json", "application/jsonl"}


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_error_shape_is_the_same_at_both_edges(cls: type[ObkError]) -> None:
    """The CLI envelope and the HTTP body carry the same message and details."""
    err = cls("something failed")
    http = json.loads(error_body(err))
    cli = err.to_json()
    assert http["message"] == cli["message"]
    assert http["code"] == err.wire_code and cli["code"] == err.code
    assert cli["status"] == err.status


def test_completion_streams_jsonl_and_errors_before_the_first_event_are_json(
    client: Client,
) -> None:
    conv = client.request(
        "POST", "/api/v1/conversation/create", json={"model": "smollm2/maxTokens=6"}
    ).json()["id"]
    resp = client.request(
        "POST",
        f"/api/v1/conversation/{conv}/complete",
        json={"text": "Say hi."},
        headers={"Accept": "application/jsonl"},
    )
    assert resp.headers["content-type"].startswith("application/jsonl")
    lines = resp.text.split("\n")
    assert lines[-1] == "" and all(lines[:-1])
    events = [json.loads(line) for line in lines[:-1]]
    allowed = {"completeBegin", "token", "usage", "completeEnd", "result"}
    assert {e["type"] for e in events} <= allowed and events[-1]["type"] == "result"
    bad = client.request("POST", "/api/v1/conversation/create", json={"model": "nope"}).json()["id"]
    resp = client.request(
        "POST",
        f"/api/v1/conversation/{bad}/complete",
        json={"text": "hi"},
        headers={"Accept": "application/jsonl"},
    )
    assert resp.status_code == 502 and resp.json()["code"] == "BAD_GATEWAY"

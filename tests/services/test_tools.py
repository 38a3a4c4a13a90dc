"""Running abilities (services/tools.py) against real things: an HTTP API on loopback that checks
the credential, the account's datasets, another bot on the bundled model."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from openbotkit.engine import Engine
from openbotkit.models.providers import LLMProvider
from openbotkit.retrieval.embedders import Embedder
from openbotkit.services import ability_kinds, tools
from openbotkit.services.completion import ask_bot
from openbotkit.services.context import AccountScope
from openbotkit.settings import Settings
from tests.conftest import RunAction, make_runner

TOKEN = "tok-9f3a7c2e51d04b8a"  # the API's credential, stored as a bearer secret
BOT_MODEL = "smollm2/maxTokens=16/temperature=0"


@dataclass
class Api:
    """A loopback order API: answers only with `Authorization: Bearer TOKEN`."""

    port: int
    seen: list[dict[str, Any]] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class _Handler(http.server.BaseHTTPRequestHandler):
    api: Api

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        self.api.seen.append(
            {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
        )
        if self.path.startswith("/slow"):
            time.sleep(3)
        if self.path.startswith("/submit"):
            # A form that answers "see the result over there" (the same origin).
            self.send_response(303)
            self.send_header("Location", "/orders/7")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.startswith("/moved"):
            # To another origin (the same server by another name): the credential stays here.
            self.send_response(302)
            self.send_header("Location", f"http://localhost:{self.api.port}/orders/1")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.headers.get("authorization") != f"Bearer {TOKEN}":
            return self._send(401, {"error": "unauthorized"})
        if self.path.startswith("/echo"):
            # A careless API that repeats the credential it was sent.
            return self._send(500, {"error": "bad", "got": self.headers.get("authorization")})
        if self.path.startswith("/orders/"):
            order = self.path.split("/orders/", 1)[1].split("?", 1)[0]
            return self._send(200, {"order": order, "status": "shipped", "posted": body})
        self._send(404, {"error": "no such path"})

    do_GET = do_POST = _answer

    def _send(self, status: int, data: dict[str, Any]) -> None:
        payload = json.dumps(data).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the caller's deadline passed and it went away (the slow path)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def api() -> Iterator[Api]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    made = Api(server.server_address[1])
    server.RequestHandlerClass = type("Handler", (_Handler,), {"api": made})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield made
    server.shutdown()
    server.server_close()


@pytest.fixture
def engine(
    settings: Settings, api: Api, local_embedder: Embedder, local_llm: LLMProvider
) -> Iterator[Engine]:
    """The test's engine, the loopback API let through by OBK_FETCH_ALLOW_HOSTS (by address
    and by name: two origins)."""
    hosts = f"127.0.0.1:{api.port},localhost:{api.port}"
    allowed = Settings(**{**settings.model_dump(), "fetch_allow_hosts": hosts})
    made = Engine(allowed, embedder=local_embedder, local_llms=[local_llm])
    yield made
    made.close()


@pytest.fixture
def run(engine: Engine) -> RunAction:
    return make_runner(engine, "alice")


@pytest.fixture
def scope(engine: Engine) -> AccountScope:
    return AccountScope(engine.runtime, engine.ensure_account("alice"))


def ability(run: RunAction, instruction: str, name: str = "Lookup order", **extra: Any) -> str:
    """A skillset holding one ability; returns the skillset's id."""
    skillset: str = run("create_skillset", {"name": "Shop"})["id"]
    fields = {"skillsetId": skillset, "name": name, "instruction": instruction, **extra}
    run("create_skillset_ability", fields)
    return skillset


def the_tool(engine: Engine, skillset: str) -> tools.Tool:
    with AccountScope(engine.runtime, engine.ensure_account("alice")).transaction(
        write=False
    ) as ctx:
        (tool,) = tools.tools_for(ctx, [skillset])
    return tool


def bearer(run: RunAction, value: str = TOKEN) -> str:
    secret: str = run("create_secret", {"name": "Shop API", "type": "bearer", "value": value})["id"]
    return secret


def fetch_block(url: str, *extra: str) -> str:
    lines = ["Look up an order.", "```fetch", "method: GET", f"url: {url}", *extra, "```"]
    return "\n".join(lines)


AUTH = "headers:\n  Authorization: ${SECRET_DEFAULT}"


def test_fetch_sends_the_secret_the_api_checks_and_returns_its_answer(
    run: RunAction, engine: Engine, scope: AccountScope, api: Api
) -> None:
    instruction = fetch_block(
        f"{api.origin}/orders/$[orderId! euc|the order number]",
        "query:\n  status: $[status? enum<open,shipped>|only orders in this state]",
        AUTH,
    )
    skillset = ability(run, instruction, linkedSecretId=bearer(run))
    tool = the_tool(engine, skillset)
    assert tool.name == "lookup_order" and tool.description == "Lookup order"
    assert tool.parameters["required"] == ["orderId"]
    assert tool.parameters["properties"]["status"]["enum"] == ["open", "shipped"]

    out = tools.call(scope, tool, {"orderId": "A 17/x", "status": "open"}, deadline_s=10)
    assert out.ok and out.error is None, out
    assert json.loads(out.result)["order"] == "A%2017%2Fx"  # euc: one path segment
    (seen,) = api.seen
    assert seen["path"] == "/orders/A%2017%2Fx?status=open"
    assert seen["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert 0 <= out.duration_ms < 10_000

    # An optional parameter not given drops its query key.
    assert tools.call(scope, tool, {"orderId": "B2"}, deadline_s=10).ok
    assert api.seen[-1]["path"] == "/orders/B2"


def test_a_post_body_takes_json_values_from_j_parameters(
    run: RunAction, engine: Engine, scope: AccountScope, api: Api
) -> None:
    instruction = (
        "```fetch\nmethod: POST\n"
        f"url: {api.origin}/orders/new\n{AUTH}\n"
        "body:\n  items: $[items! j|the items, a JSON list]\n  note: $[note?|a note]\n```"
    )
    tool = the_tool(engine, ability(run, instruction, linkedSecretId=bearer(run)))
    out = tools.call(scope, tool, {"items": [{"sku": "X", "n": 2}]}, deadline_s=10)
    assert out.ok, out
    (seen,) = api.seen
    assert seen["method"] == "POST" and seen["headers"]["Content-Type"] == "application/json"
    assert json.loads(seen["body"]) == {"items": [{"sku": "X", "n": 2}]}


def test_bad_arguments_are_refused_naming_the_parameter_and_nothing_is_sent(
    run: RunAction, engine: Engine, scope: AccountScope, api: Api
) -> None:
    instruction = fetch_block(
        f"{api.origin}/orders/$[orderId! euc|the order number]",
        "query:\n  status: $[status? enum<open,shipped>|state]",
        AUTH,
    )
    tool = the_tool(engine, ability(run, instruction, linkedSecretId=bearer(run)))
    cases: dict[str, dict[str, Any]] = {
        "parameter 'orderId' is required": {},
        "parameter 'status' must be one of open, shipped": {"orderId": "1", "status": "lost"},
        "parameter 'orderId' must be of type string": {"orderId": 17},
        "parameter 'extra' is not a parameter of this tool": {"orderId": "1", "extra": "x"},
    }
    for message, arguments in cases.items():
        out = tools.call(scope, tool, arguments, deadline_s=10)
        assert not out.ok and out.error is not None and message in out.error, out
    assert api.seen == []


def test_header_injection_through_a_parameter_is_refused(
    run: RunAction, engine: Engine, scope: AccountScope, api: Api
) -> None:
    instruction = fetch_block(
        f"{api.origin}/orders/1",
        f"{AUTH}\n  X-Customer: $[customer!|the customer's name]",
    )
    tool = the_tool(engine, ability(run, instruction, linkedSecretId=bearer(run)))
    for hostile in ("Ann\r\nX-Admin: 1", "Ann\nX-Admin: 1", "Ann\r\n\r\nGET / HTTP/1.1"):
        out = tools.call(scope, tool, {"customer": hostile}, deadline_s=10)
        assert not out.ok and out.error is not None
        assert "parameter 'customer'" in out.error and "line break" in out.error
    out = tools.call(scope, tool, {"customer": "Zoë"}, deadline_s=10)
    assert not out.ok and out.error is not None and "ASCII" in out.error
    assert api.seen == []


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "169.254.169.254", "localhost", "[::1]", "127.0.0.1:1", "10.0.0.7"]
)
def test_ssrf_through_a_url_template_is_refused(
    run: RunAction, engine: Engine, scope: AccountScope, api: Api, host: str
) -> None:
    """A parameter that picks the host may not reach a private address the operator did not
    allow (OBK_FETCH_ALLOW_HOSTS names only the API's port)."""
    tool = the_tool(engine, ability(run, fetch_block("http://$[host!|the API host]/latest")))
    out = tools.call(scope, tool, {"host": host}, deadline_s=10)
    assert not out.ok and out.error is not None
    assert "not a public address" in out.error or "cannot resolve" in out.error, out.error


def test_a_parameter_cannot_move_the_secret_to_another_host(
    run: RunAction, engine: Engine, scope: AccountScope, api: Api
) -> None:
    secret = bearer(run)
    # The template names the host; a value that rewrites the URL's authority is refused.
    fixed = the_tool(
        engine, ability(run, fetch_block(f"{api.origin}$[path!|path]", AUTH), linkedSecretId=secret)
    )
    out = tools.call(scope, fixed, {"path": "@169.254.169.254/"}, deadline_s=10)
    assert not out.ok and out.error is not None and "host" in out.error, out
    # A host a parameter chooses never gets a secret, even an allowed one.
    chosen = the_tool(
        engine,
        ability(
            run, fetch_block("http://$[host!|host]/orders/1", AUTH), "Any", linkedSecretId=secret
        ),
    )
    out = tools.call(scope, chosen, {"host": f"127.0.0.1:{api.port}"}, deadline_s=10)
    assert not out.ok and out.error is not None and "secret" in out.error
    assert api.seen == []


def test_a_post_answered_with_303_continues_as_a_get_on_the_same_origin(
    run: RunAction, engine: Engine, scope: AccountScope, api: Api
) -> None:
    instruction = (
        f"```fetch\nmethod: POST\nurl: {api.origin}/submit\n{AUTH}\n"
        "body:\n  note: $[note!|a note]\n```"
    )
    tool = the_tool(engine, ability(run, instruction, linkedSecretId=bearer(run)))
    out = tools.call(scope, tool, {"note": "hi"}, deadline_s=10)
    assert out.ok and json.loads(out.result)["order"] == "7", out
    first, second = api.seen
    assert (first["method"], json.loads(first["body"])) == ("POST", {"note": "hi"})
    assert (second["method"], second["body"]) == ("GET", "")
    assert second["headers"]["Authorization"] == f"Bearer {TOKEN}"  # same origin: kept


def test_a_redirect_to_another_origin_does_not_carry_the_secret(
    run: RunAction, engine: Engine, scope: AccountScope, api: Api
) -> None:
    tool = the_tool(
        engine, ability(run, fetch_block(f"{api.origin}/moved", AUTH), linkedSecretId=bearer(run))
    )
    out = tools.call(scope, tool, {}, deadline_s=10)
    first, second = api.seen
    assert first["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert second["path"] == "/orders/1" and "Authorization" not in second["headers"]
    assert second["headers"]["Host"] == f"localhost:{api.port}"
    assert not out.ok and out.error == "HTTP 401 from localhost"


def test_a_slow_server_meets_the_deadline_as_a_failed_call(
    run: RunAction, engine: Engine, scope: AccountScope, api: Api
) -> None:
    tool = the_tool(
        engine, ability(run, fetch_block(f"{api.origin}/slow", AUTH), linkedSecretId=bearer(run))
    )
    started = time.monotonic()
    out = tools.call(scope, tool, {}, deadline_s=1.0)
    assert not out.ok and out.error is not None and "longer than" in out.error, out
    assert time.monotonic() - started < 2.5


def test_a_secret_never_comes_back_in_an_outcome(
    run: RunAction, engine: Engine, scope: AccountScope, api: Api
) -> None:
    secret = bearer(run)
    echo = the_tool(
        engine, ability(run, fetch_block(f"{api.origin}/echo", AUTH), linkedSecretId=secret)
    )
    out = tools.call(scope, echo, {}, deadline_s=10)
    assert not out.ok and out.error == "HTTP 500 from 127.0.0.1"
    assert api.seen[-1]["headers"]["Authorization"] == f"Bearer {TOKEN}"  # it was sent...
    assert TOKEN not in out.result and tools.REDACTED in out.result  # ...and never read back
    # In a URL (a query key), the secret stays out of an error that names the URL.
    run("create_secret", {"name": "key", "alias": "shop-key", "type": "plain", "value": TOKEN})
    in_url = the_tool(
        engine,
        ability(run, fetch_block("http://169.254.169.254/x?key=${SECRET_SHOP_KEY}"), "Meta"),
    )
    out = tools.call(scope, in_url, {}, deadline_s=10)
    assert not out.ok and out.error is not None and "169.254.169.254" in out.error
    for text in (out.result, out.error):
        assert TOKEN not in text and "tok-9f3a" not in text


def test_dataset_search_returns_the_other_datasets_records(
    run: RunAction, engine: Engine, scope: AccountScope
) -> None:
    manuals = run("create_dataset", {"name": "manuals"})["id"]
    wanted = run(
        "create_dataset_record",
        {"datasetId": manuals, "text": "The Zephyr-9 robot carries at most 42 kilograms."},
    )["id"]
    run("create_dataset_record", {"datasetId": manuals, "text": "Invoices are sent monthly."})
    elsewhere = run("create_dataset", {"name": "elsewhere"})["id"]
    run("create_dataset_record", {"datasetId": elsewhere, "text": "Zephyr-9 payload is secret."})
    instruction = f"```dataset/search/id={manuals}\n$[query!|what to look for]\n```"
    tool = the_tool(engine, ability(run, instruction, "Search manuals"))
    assert tool.parameters["required"] == ["query"]
    out = tools.call(scope, tool, {"query": "Zephyr-9 payload"}, deadline_s=30)
    assert out.ok, out
    found = json.loads(out.result)
    assert found["datasetId"] == manuals
    assert found["records"][0]["id"] == wanted
    assert all(r["text"] != "Zephyr-9 payload is secret." for r in found["records"])


def test_asking_another_bot_gives_that_bots_answer(
    run: RunAction, engine: Engine, scope: AccountScope
) -> None:
    # The expert's own model settings (4 tokens at most) show whose answer came back.
    expert = run(
        "create_bot",
        {
            "name": "Expert",
            "model": "smollm2/maxTokens=4/temperature=0",
            "backstory": "You answer questions about robots.",
        },
    )["id"]
    instruction = "```bot\nprompt: $[question!|the question for the expert]\n```"
    tool = the_tool(engine, ability(run, instruction, "Ask the expert", linkedBotId=expert))
    assert tool.parameters["required"] == ["question"]
    out = tools.call(scope, tool, {"question": "What is a robot?"}, deadline_s=120, ask=ask_bot)
    assert out.ok and out.error is None, out
    assert out.result.strip() and len(out.result.split()) <= 4
    # A bot that does not exist (deleted since) is a failed call, not an exception.
    run("delete_bot", {"botId": expert})
    out = tools.call(scope, tool, {"question": "What is a robot?"}, deadline_s=120, ask=ask_bot)
    assert not out.ok and out.error is not None and expert in out.error


def test_bots_asking_bots_cannot_loop(run: RunAction, engine: Engine, scope: AccountScope) -> None:
    expert = run("create_bot", {"name": "Expert", "model": BOT_MODEL})["id"]
    instruction = f"```bot/ask/id={expert}\n$[question!|question]\n```"
    tool = the_tool(engine, ability(run, instruction, "Ask"))
    # As if the expert itself were answering, and asked itself through this ability.
    asking = replace(scope, asking=(expert,))
    out = tools.call(asking, tool, {"question": "hi"}, deadline_s=60, ask=ask_bot)
    assert not out.ok and out.error is not None and "already answering" in out.error
    chain = tuple(f"bot_{i}" for i in range(ability_kinds.MAX_BOT_DEPTH))
    deep = replace(scope, asking=chain)
    out = tools.call(deep, tool, {"question": "hi"}, deadline_s=60, ask=ask_bot)
    assert not out.ok and out.error is not None and "levels" in out.error


def test_tools_have_stable_unique_names_and_skip_disabled_abilities(
    run: RunAction, engine: Engine
) -> None:
    skillset = run("create_skillset", {"name": "Mixed"})["id"]
    for name in ("Lookup order", "Lookup order", "Off"):
        state = {"state": "disabled"} if name == "Off" else {}
        run(
            "create_skillset_ability",
            {"skillsetId": skillset, "name": name, "instruction": "Say hello.", **state},
        )
    with AccountScope(engine.runtime, engine.ensure_account("alice")).transaction(
        write=False
    ) as ctx:
        made = tools.tools_for(ctx, [skillset])
        again = tools.tools_for(ctx, [skillset])
    assert made == again
    first, second = made
    assert first.name == "lookup_order" and second.name.startswith("lookup_order_")
    assert len(second.name) == len("lookup_order_") + 6
    # Another account's skillset gives nothing.
    with AccountScope(engine.runtime, engine.ensure_account("bob")).transaction(write=False) as ctx:
        assert tools.tools_for(ctx, [skillset]) == []


def test_a_client_side_function_is_not_run_here(scope: AccountScope) -> None:
    function = tools.Tool("get_weather", "The weather", {"type": "object"}, None)
    out = tools.call(scope, function, {}, deadline_s=1)
    assert not out.ok and out.error is not None and "client" in out.error

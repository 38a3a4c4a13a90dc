"""Keys through the connector's HTTP backend against a real server on loopback: the server's
scope, expiry and budget refusals come back as the same connector errors and codes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from openbotkit.access import Effect
from openbotkit.actions import REGISTRY
from openbotkit.cli.app import cli
from openbotkit.client.http import HttpBackend
from openbotkit.engine import Engine
from openbotkit.errors import CredentialExpired, InsufficientCredit, ScopeMissing
from openbotkit.ids import now_ms
from openbotkit.server.app import create_app
from openbotkit.services.secrets import create_secret
from tests.server.serving import serve_in_thread


@pytest.fixture
def origin(engine: Engine) -> Iterator[str]:
    with serve_in_thread(create_app(engine.settings, engine)) as url:
        yield url


def backend(engine: Engine, origin: str, **limits: Any) -> HttpBackend:
    return HttpBackend(origin, create_secret(engine.runtime, "alice", **limits)[1])


def call(b: HttpBackend, name: str, data: dict[str, Any]) -> dict[str, Any]:
    act = REGISTRY.get(name)
    return b.run(act, act.parse_input(data))


def test_scope_refusals_are_scope_missing(engine: Engine, origin: str) -> None:
    owner = backend(engine, origin)
    bot = call(owner, "create_bot", {"name": "b"})["id"]
    other = call(owner, "create_bot", {})["id"]
    reader = backend(engine, origin, scope=Effect.READ)
    assert call(reader, "fetch_bot", {"botId": bot})["name"] == "b"
    with pytest.raises(ScopeMissing, match="needs scope write") as err:
        call(reader, "update_bot", {"botId": bot, "name": "x"})
    assert err.value.code == "scope_missing" and err.value.status == 403
    limited = backend(engine, origin, bots=[bot], scope=Effect.WRITE)
    with pytest.raises(ScopeMissing, match=f"bot {other}"):
        call(limited, "fetch_bot", {"botId": other})
    with pytest.raises(ScopeMissing, match="without bot or dataset limits"):
        call(limited, "list_bots", {})
    with pytest.raises(ScopeMissing, match="needs scope destructive"):
        call(limited, "update_bot", {"botId": bot, "name": "x"})


def test_expired_key_is_credential_expired(engine: Engine, origin: str) -> None:
    b = backend(engine, origin, expires_at=now_ms() + 800)
    assert call(b, "list_bots", {})["items"] == []
    time.sleep(0.9)
    with pytest.raises(CredentialExpired) as err:
        call(b, "list_bots", {})
    assert err.value.code == "credential_expired" and err.value.status == 401


def test_connector_cli_envelope_names_the_code(
    engine: Engine, origin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = create_secret(engine.runtime, "alice", scope=Effect.READ)[1]
    monkeypatch.setenv("CHATBOTKIT_API_SECRET", token)
    args = ["connector", "run", "chatbotkit", "--action", "create_bot", "--json"]
    result = CliRunner().invoke(cli, [*args, "--base-url", origin, "--data", "{}"])
    assert result.exit_code == 1
    envelope = json.loads(result.stdout)
    assert envelope["error"]["code"] == "scope_missing" and envelope["error"]["status"] == 403
    assert "needs scope write" in envelope["error"]["message"]


@pytest.mark.slow
def test_spent_budget_is_insufficient_credit_streamed_or_not(engine: Engine, origin: str) -> None:
    owner = backend(engine, origin)
    bot = call(owner, "create_bot", {"model": "smollm2/maxTokens=4/temperature=0"})["id"]
    # Room for the first answer (a prompt of ~30 tokens and 4 more), not for a second prompt.
    page = backend(engine, origin, bots=[bot], scope=Effect.WRITE, budget_tokens=50)
    conv = call(page, "create_conversation", {"botId": bot})["id"]
    # The page's key talks through the conversation's session, which spends its budget.
    session = call(page, "create_conversation_session", {"conversationId": conv})
    b = HttpBackend(origin, session["token"])
    first = call(b, "complete_conversation", {"conversationId": conv, "text": "Hi"})
    assert 4 < first["usage"]["token"] <= 50
    act = REGISTRY.get("complete_conversation")
    inp = act.parse_input({"conversationId": conv, "text": "Again"})
    with pytest.raises(InsufficientCredit) as err:
        b.run(act, inp)
    assert err.value.code == "insufficient_credit" and err.value.status == 402
    with pytest.raises(InsufficientCredit):
        list(b.stream(act, inp))
    listed = call(b, "list_conversation_messages", {"conversationId": conv})["items"]
    assert [m["type"] for m in listed] == ["user", "bot"]  # the refused turns stored nothing

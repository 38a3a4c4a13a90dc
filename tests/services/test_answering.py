"""The tool loop against a scripted OpenAI-compatible server on loopback.

Remote tool-calling providers cannot be reached here, so a small Starlette app stands in: it
replays exact chat-completions streams (a tool call, a call that fails, the limit hit, two
parallel calls, then an answer) and keeps every request body, so a test sees what the model was
sent as well as what the platform stored and streamed. Everything between is the real thing:
the routing table, the OpenAI-compatible provider, the completion, the store, the REST server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from openbotkit.actions import REGISTRY
from openbotkit.actions.registry import Effect
from openbotkit.engine import Engine
from openbotkit.errors import InvalidInput, NotFound
from openbotkit.server.app import create_app
from openbotkit.services.accounts import LOCAL_ACCOUNT
from openbotkit.services.secrets import create_secret
from openbotkit.settings import Settings
from tests.server.serving import serve_in_thread
from tests.services.test_tools import AUTH, TOKEN, Api, api, fetch_block

__all__ = ["api"]  # the loopback API fixture, shared with the runner's tests

Chunk = dict[str, Any]


def text(answer: str) -> list[Chunk]:
    """A streamed answer: two content pieces, then the stop."""
    half = len(answer) // 2
    return [
        {"choices": [{"index": 0, "delta": {"content": answer[:half]}}]},
        {"choices": [{"index": 0, "delta": {"content": answer[half:]}, "finish_reason": "stop"}]},
        {"choices": [], "usage": {"prompt_tokens": 50, "completion_tokens": 7}},
    ]


def calls(*made: tuple[str, str]) -> list[Chunk]:
    """Tool calls as OpenAI streams them: the first piece has the id and name, the arguments
    follow in two pieces (so the provider must join them)."""
    chunks: list[Chunk] = []
    for i, (name, arguments) in enumerate(made):
        head = {"index": i, "id": f"call_{i}", "type": "function", "function": {"name": name}}
        cut = len(arguments) // 2
        chunks += [
            {"choices": [{"index": 0, "delta": {"tool_calls": [head]}}]},
            {"choices": [{"index": 0, "delta": {"tool_calls": [_args(i, arguments[:cut])]}}]},
            {"choices": [{"index": 0, "delta": {"tool_calls": [_args(i, arguments[cut:])]}}]},
        ]
    chunks += [
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {"choices": [], "usage": {"prompt_tokens": 40, "completion_tokens": 12}},
    ]
    return chunks


def _args(index: int, piece: str) -> Chunk:
    return {"index": index, "function": {"arguments": piece}}


@dataclass
class Script:
    """The replies the scripted model gives, in order, and the requests it was sent."""

    replies: list[list[Chunk]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)

    async def chat(self, request: Request) -> Response:
        self.requests.append(await request.json())
        chunks = self.replies.pop(0)
        body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        return Response(body, media_type="text/event-stream")


@pytest.fixture
def script() -> Iterator[tuple[Script, str]]:
    script = Script()
    app = Starlette(routes=[Route("/v1/chat/completions", script.chat, methods=["POST"])])
    with serve_in_thread(app) as origin:
        yield script, origin


@pytest.fixture
def engine(tmp_path: Path, script: tuple[Script, str], api: Api) -> Iterator[Engine]:
    origin = script[1]
    table = {
        "models": {
            "scripted": {"provider": "openai", "baseUrl": f"{origin}/v1", "model": "m"},
            "no-tools": {
                "provider": "openai",
                "baseUrl": f"{origin}/v1",
                "model": "m",
                "tools": False,
            },
        }
    }
    path = tmp_path / "models.json"
    path.write_text(json.dumps(table))
    settings = Settings(
        home=tmp_path / "home",
        models_file=path,
        default_model="scripted",
        fetch_allow_hosts=f"127.0.0.1:{api.port}",  # the loopback API the abilities call
    )
    engine = Engine(settings)
    yield engine
    engine.close()


ORDER = {
    "name": "lookup_order",
    "description": "Look up an order by its number.",
    "parameters": {
        "type": "object",
        "properties": {"orderId": {"type": "string"}},
        "required": ["orderId"],
    },
    "result": {"data": {"orderId": "42", "status": "shipped"}},
}


def converse(
    engine: Engine, model: str | None = None, **request: Any
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Complete a new conversation (on `model`), streamed: (events, stored messages)."""
    conversation = engine.execute("create_conversation", {"model": model} if model else {})["id"]
    act = REGISTRY.get("complete_conversation")
    inp = act.parse_input({"conversationId": conversation, "text": "hi", **request})
    account = engine.ensure_account(LOCAL_ACCOUNT)
    events = list(engine.stream(act, inp, account_id=account))
    stored = engine.execute("list_conversation_messages", {"conversationId": conversation})
    return events, stored["items"]


def result_of(events: list[dict[str, Any]]) -> dict[str, Any]:
    return next(e["data"] for e in events if e["type"] == "result")


def activities(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        e["data"]["meta"]["activity"]
        for e in events
        if e["type"] == "message" and e["data"]["type"] == "activity"
    ]


def test_a_tool_call_is_run_recorded_streamed_and_read_back(
    engine: Engine, script: tuple[Script, str]
) -> None:
    model = script[0]
    model.replies = [calls(("lookup_order", '{"orderId": "42"}')), text("Order 42 has shipped.")]
    events, stored = converse(engine, functions=[ORDER])
    out = result_of(events)
    assert out["text"] == "Order 42 has shipped."
    assert out["end"] == {"reason": "stop"}
    assert out["usage"] == {"token": 40 + 12 + 50 + 7}  # both generations count
    # Streamed as it happened: the activity comes before the answer's tokens.
    kinds = [e["type"] for e in events]
    assert kinds.index("message") < max(i for i, k in enumerate(kinds) if k == "token")
    (activity,) = activities(events)
    assert activity["name"] == "lookup_order"
    assert activity["arguments"] == {"orderId": "42"}
    assert activity["status"] == "ok" and activity["error"] is None
    assert json.loads(activity["result"]) == {"orderId": "42", "status": "shipped"}
    # Stored in order: the question, the call, the answer.
    assert [m["type"] for m in stored] == ["user", "activity", "bot"]
    assert stored[1]["text"] == "lookup_order → ok"
    assert stored[1]["meta"]["activity"] == activity
    # What the model was sent: the tools first, then its own call and the call's result.
    first, second = model.requests
    assert [t["function"]["name"] for t in first["tools"]] == ["lookup_order"]
    assert second["messages"][-2]["tool_calls"][0]["function"]["name"] == "lookup_order"
    assert second["messages"][-1] == {
        "role": "tool",
        "content": json.dumps({"orderId": "42", "status": "shipped"}),
        "tool_call_id": "call_0",
    }


def test_a_failed_call_is_fed_back_as_a_failure(engine: Engine, script: tuple[Script, str]) -> None:
    model = script[0]
    model.replies = [
        calls(("refund_order", '{"orderId": "42"}'), ("lookup_order", '{"orderId": ')),
        text("I could not do that."),
    ]
    events, stored = converse(engine, functions=[ORDER])
    assert result_of(events)["text"] == "I could not do that."
    unknown, malformed = activities(events)
    assert unknown["status"] == "error"
    assert unknown["error"] == "there is no tool named 'refund_order'"
    assert malformed["status"] == "error" and "not JSON" in malformed["error"]
    fed = [m for m in model.requests[1]["messages"] if m["role"] == "tool"]
    assert fed[0]["content"] == "The call failed: there is no tool named 'refund_order'"
    assert fed[1]["content"].startswith("The call failed: lookup_order: the arguments are not")
    assert [m["type"] for m in stored] == ["user", "activity", "activity", "bot"]


def test_two_parallel_calls_both_run_in_order(engine: Engine, script: tuple[Script, str]) -> None:
    model = script[0]
    model.replies = [
        calls(("lookup_order", '{"orderId": "1"}'), ("lookup_order", '{"orderId": "2"}')),
        text("Both shipped."),
    ]
    events, _ = converse(engine, functions=[ORDER])
    assert [a["arguments"] for a in activities(events)] == [{"orderId": "1"}, {"orderId": "2"}]
    assert [a["status"] for a in activities(events)] == ["ok", "ok"]
    fed = [m["tool_call_id"] for m in model.requests[1]["messages"] if m["role"] == "tool"]
    assert fed == ["call_0", "call_1"]
    assert result_of(events)["meta"]["activities"] == activities(events)


def test_the_iteration_limit_withholds_the_tools_and_says_so(
    engine: Engine, script: tuple[Script, str]
) -> None:
    model = script[0]
    model.replies = [calls(("lookup_order", '{"orderId": "1"}')), text("Here is what I found.")]
    events, _ = converse(engine, functions=[ORDER], limits={"iterations": 1})
    assert "tools" in model.requests[0]
    assert "tools" not in model.requests[1]  # the last round must answer
    assert result_of(events)["end"] == {"reason": "iteration"}
    assert result_of(events)["text"] == "Here is what I found."


def test_a_model_calling_past_the_call_limit_is_refused_per_call(
    engine: Engine, script: tuple[Script, str]
) -> None:
    model = script[0]
    model.replies = [
        calls(("lookup_order", '{"orderId": "1"}'), ("lookup_order", '{"orderId": "2"}')),
        text("One of them shipped."),
    ]
    events, _ = converse(engine, functions=[ORDER], limits={"calls": 1})
    first, second = activities(events)
    assert first["status"] == "ok"
    assert second["status"] == "error"
    assert second["error"] == "the turn's limit of 1 calls is reached"
    assert "tools" not in model.requests[1]
    assert result_of(events)["end"] == {"reason": "iteration"}


def test_a_client_side_function_ends_the_turn_with_the_call(
    engine: Engine, script: tuple[Script, str]
) -> None:
    model = script[0]
    model.replies = [calls(("open_ticket", '{"topic": "refund"}'))]
    function = {
        "name": "open_ticket",
        "description": "Open a support ticket.",
        "parameters": {"type": "object", "properties": {"topic": {"type": "string"}}},
        "result": {"channel": "tickets-0123456789"},
    }
    events, stored = converse(engine, functions=[function])
    wait = next(e for e in events if e["type"] == "waitForChannelMessageBegin")
    assert wait["data"] == {
        "channel": "tickets-0123456789",
        "function": {"name": "open_ticket", "args": {"topic": "refund"}},
    }
    out = result_of(events)
    assert out["end"] == {"reason": "activity"} and out["text"] == ""
    assert out["meta"]["activities"][0]["status"] == "requested"
    assert [m["type"] for m in stored] == ["user", "activity"]
    assert out["id"] == stored[-1]["id"]
    assert len(model.requests) == 1


def test_the_stateless_completion_calls_tools_too(
    engine: Engine, script: tuple[Script, str]
) -> None:
    model = script[0]
    model.replies = [calls(("lookup_order", '{"orderId": "7"}')), text("Shipped.")]
    out = engine.execute(
        "complete_messages",
        {"messages": [{"type": "user", "text": "order 7?"}], "functions": [ORDER]},
    )
    assert out["text"] == "Shipped."
    assert out["meta"]["activities"][0]["arguments"] == {"orderId": "7"}


def test_a_model_that_cannot_call_tools_is_an_error_naming_it(
    engine: Engine, script: tuple[Script, str]
) -> None:
    with pytest.raises(InvalidInput) as err:
        converse(engine, functions=[ORDER], model="no-tools")
    assert "'no-tools' cannot call tools" in str(err.value)
    assert script[0].requests == []  # refused before the model ran
    # Without tools the same model answers as before.
    script[0].replies = [text("Hello.")]
    events, _ = converse(engine, model="no-tools")
    assert result_of(events)["text"] == "Hello."


def test_extensions_add_a_backstory_and_name_only_the_accounts_skillsets(
    engine: Engine, script: tuple[Script, str]
) -> None:
    model = script[0]
    model.replies = [text("Ahoy.")]
    converse(engine, extensions={"backstory": "Speak like a pirate."})
    assert model.requests[0]["messages"][0]["content"].endswith("Speak like a pirate.")
    with pytest.raises(NotFound) as err:
        converse(engine, extensions={"skillsets": ["sk_missing"]})
    assert "extensions/skillsets/0" in str(err.value)


def test_over_rest_a_public_key_may_not_set_functions_or_extensions(
    engine: Engine, script: tuple[Script, str]
) -> None:
    script[0].replies = [calls(("lookup_order", '{"orderId": "42"}')), text("Shipped.")]
    bot = engine.execute("create_bot", {"name": "shop"})["id"]
    conversation = engine.execute("create_conversation", {"botId": bot})["id"]
    full = create_secret(engine.runtime, "local")[1]
    public = create_secret(engine.runtime, "local", bots=[bot], scope=Effect.WRITE)[1]
    app = create_app(engine.settings, engine)
    with serve_in_thread(app) as origin:
        url = f"{origin}/api/v1/conversation/{conversation}/complete"
        body = {"text": "order 42?", "functions": [ORDER]}
        refused = httpx.post(url, json=body, headers={"Authorization": f"Bearer {public}"})
        assert refused.status_code == 403, refused.text
        assert "functions" in refused.text
        lines = httpx.post(
            url,
            json=body,
            headers={"Authorization": f"Bearer {full}", "Accept": "application/jsonl"},
            timeout=30,
        ).text.splitlines()
    events = [json.loads(line) for line in lines]
    assert activities(events)[0]["name"] == "lookup_order"
    assert result_of(events)["text"] == "Shipped."


def test_a_bots_fetch_ability_calls_the_api_with_its_secret_and_the_model_reads_it(
    engine: Engine, script: tuple[Script, str], api: Api
) -> None:
    run = engine.execute
    secret = run("create_secret", {"name": "Shop API", "type": "bearer", "value": TOKEN})["id"]
    skillset = run("create_skillset", {"name": "Shop"})["id"]
    instruction = fetch_block(f"{api.origin}/orders/$[orderId! euc|the order number]", AUTH)
    ability = run(
        "create_skillset_ability",
        {
            "skillsetId": skillset,
            "name": "Lookup order",
            "instruction": instruction,
            "linkedSecretId": secret,
        },
    )["id"]
    bot = run("create_bot", {"name": "shop", "skillsetId": skillset})["id"]
    conversation = run("create_conversation", {"botId": bot})["id"]
    model = script[0]
    model.replies = [calls(("lookup_order", '{"orderId": "42"}')), text("Order 42 shipped.")]
    out = run("complete_conversation", {"conversationId": conversation, "text": "order 42?"})
    assert out["text"] == "Order 42 shipped."
    (activity,) = out["meta"]["activities"]
    assert activity["abilityId"] == ability and activity["status"] == "ok"
    assert json.loads(activity["result"])["status"] == "shipped"
    (seen,) = api.seen
    assert seen["headers"]["Authorization"] == f"Bearer {TOKEN}"
    fed = model.requests[1]["messages"][-1]
    assert fed["role"] == "tool" and json.loads(fed["content"])["order"] == "42"
    stored = run("list_conversation_messages", {"conversationId": conversation})["items"]
    assert TOKEN not in json.dumps(stored)  # the secret is in no message


def test_a_bots_public_key_and_session_run_its_abilities_but_may_not_add_tools(
    engine: Engine, script: tuple[Script, str], api: Api
) -> None:
    run = engine.execute
    secret = run("create_secret", {"name": "Shop API", "type": "bearer", "value": TOKEN})["id"]
    skillset = run("create_skillset", {"name": "Shop"})["id"]
    run(
        "create_skillset_ability",
        {
            "skillsetId": skillset,
            "name": "Lookup order",
            "instruction": fetch_block(f"{api.origin}/orders/$[orderId! euc|the number]", AUTH),
            "linkedSecretId": secret,
        },
    )
    bot = run("create_bot", {"name": "shop", "skillsetId": skillset})["id"]
    public = create_secret(engine.runtime, LOCAL_ACCOUNT, bots=[bot], scope=Effect.WRITE)[1]
    script[0].replies = [calls(("lookup_order", '{"orderId": "9"}')), text("Order 9 shipped.")]
    with serve_in_thread(create_app(engine.settings, engine)) as origin:
        base = f"{origin}/api/v1"

        def post(path: str, token: str, body: dict[str, Any]) -> httpx.Response:
            auth = {"Authorization": f"Bearer {token}"}
            return httpx.post(f"{base}{path}", json=body, headers=auth, timeout=30)

        conversation = post("/conversation/create", public, {"botId": bot}).json()["id"]
        session = post(f"/conversation/{conversation}/session/create", public, {}).json()["token"]
        answered = post(f"/conversation/{conversation}/complete", session, {"text": "order 9?"})
        assert answered.status_code == 200, answered.text
        assert answered.json()["text"] == "Order 9 shipped."
        assert answered.json()["meta"]["activities"][0]["status"] == "ok"
        # The same session may not bring tools of its own, nor read the bot's.
        for extra in ({"functions": [ORDER]}, {"extensions": {"skillsets": [skillset]}}):
            body = {"text": "and now?", **extra}
            refused = post(f"/conversation/{conversation}/complete", session, body)
            assert refused.status_code == 403, refused.text
            assert next(iter(extra)) in refused.text
        assert (
            httpx.get(
                f"{base}/skillset/{skillset}/ability/list",
                headers={"Authorization": f"Bearer {public}"},
            ).status_code
            == 403
        )
    (seen,) = api.seen
    assert seen["headers"]["Authorization"] == f"Bearer {TOKEN}"


def test_the_official_sdks_stream_types_read_every_event_of_a_tool_turn(
    engine: Engine, script: tuple[Script, str]
) -> None:
    from chatbotkit.types import ConversationMessageCompleteStreamItem

    ticket = {
        "name": "open_ticket",
        "description": "Open a support ticket.",
        "parameters": {"type": "object", "properties": {"topic": {"type": "string"}}},
    }
    script[0].replies = [
        calls(("lookup_order", '{"orderId": "1"}')),
        calls(("open_ticket", '{"topic": "late"}')),
    ]
    events, _ = converse(engine, functions=[ORDER, ticket])
    kinds = [ConversationMessageCompleteStreamItem.from_dict(e).type.value for e in events]
    assert kinds.count("message") == 2 and "waitForChannelMessageBegin" in kinds
    assert kinds[0] == "completeBegin" and kinds[-2:] == ["completeEnd", "result"]

"""The bundled local model running abilities: one action chosen under the JSON grammar, run by
the platform, then a grounded answer (SmolLM2 here, for speed; bench/abilities.py measures how
well the default model chooses)."""

from __future__ import annotations

import json

from openbotkit.engine import Engine
from openbotkit.models.llamacpp import LlamaCppProvider
from openbotkit.models.prompt import Turn
from openbotkit.models.providers import Finished, GenerationOptions, LLMProvider, Token, ToolSpec
from openbotkit.retrieval.embedders import Embedder
from openbotkit.services.answering import choice_messages, parse_choice
from openbotkit.settings import Settings
from tests.conftest import RunAction, make_runner
from tests.services.test_tools import AUTH, TOKEN, Api, api, fetch_block

__all__ = ["api"]  # the loopback API fixture, shared with the runner's tests

ORDER = ToolSpec(
    "lookup_order",
    "Look up an order's status by its order number.",
    {
        "type": "object",
        "properties": {"orderId": {"type": "string", "description": "the order number"}},
        "required": ["orderId"],
    },
)


def test_the_choice_is_always_one_of_the_tools_with_its_own_arguments(
    local_llm: LlamaCppProvider,
) -> None:
    messages = choice_messages(None, [Turn("user", "Where is my order 48213?")], [ORDER])
    events = list(local_llm.choose(messages, [ORDER], GenerationOptions(max_tokens=100)))
    text = "".join(e.text for e in events if isinstance(e, Token))
    finished = events[-1]
    assert isinstance(finished, Finished) and finished.output_tokens > 0
    call = parse_choice(text)
    if finished.reason == "length":
        # A choice cut short by its cap (the small model may write a string until then) is
        # no action, never a guess at what it meant.
        assert call is None
        return
    choice = json.loads(text, strict=False)  # the grammar allows nothing else (a raw newline)
    assert choice["tool"] in ("lookup_order", "none")
    if choice["tool"] == "lookup_order":
        assert call is not None and set(call.arguments) == {"orderId"}
        assert isinstance(call.arguments["orderId"], str)


def test_a_local_turn_with_a_function_chooses_runs_and_answers(run: RunAction) -> None:
    function = {
        "name": "lookup_order",
        "description": "Look up an order's status by its order number.",
        "parameters": ORDER.parameters,
        "result": {"data": {"status": "shipped"}},
    }
    conversation = run("create_conversation", {})["id"]
    out = run(
        "complete_conversation",
        {"conversationId": conversation, "text": "Where is order 48213?", "functions": [function]},
    )
    stored = run("list_conversation_messages", {"conversationId": conversation})["items"]
    called = out["meta"].get("activities", [])
    # One action at most, then the grounded answer (never a loop on the local model).
    assert len(called) <= 1
    assert [m["type"] for m in stored] == ["user", *(["activity"] * len(called)), "bot"]
    assert out["end"]["reason"] in ("stop", "length")
    assert stored[-1]["text"] == out["text"]
    if called:
        assert called[0]["status"] == "ok" and called[0]["name"] == "lookup_order"


def test_a_local_bot_runs_its_fetch_ability_against_a_loopback_api(
    settings: Settings, api: Api, local_embedder: Embedder, local_llm: LLMProvider
) -> None:
    allowed = Settings(**{**settings.model_dump(), "fetch_allow_hosts": f"127.0.0.1:{api.port}"})
    engine = Engine(allowed, embedder=local_embedder, local_llms=[local_llm])
    try:
        run = make_runner(engine, "alice")
        bot = order_bot(run, api)
        conversation = run("create_conversation", {"botId": bot})["id"]
        out = run(
            "complete_conversation",
            {"conversationId": conversation, "text": "Look up order 48213."},
        )
    finally:
        engine.close()
    # The small model is greedy here: the same prompt chooses the same action every run.
    (activity,) = out["meta"]["activities"]
    assert activity["name"] == "lookup_order" and activity["status"] == "ok", activity
    (seen,) = api.seen
    assert seen["path"].startswith("/orders/")
    assert seen["headers"]["Authorization"] == f"Bearer {TOKEN}"
    # The grounded answer read the call's result as a fact.
    assert out["meta"]["sources"] == []
    assert out["text"]


def order_bot(run: RunAction, api: Api) -> str:
    """A bot whose one ability looks an order up in the loopback API, with its bearer secret."""
    secret = run("create_secret", {"name": "Shop API", "type": "bearer", "value": TOKEN})["id"]
    skillset = run("create_skillset", {"name": "Shop"})["id"]
    instruction = fetch_block(f"{api.origin}/orders/$[orderId! euc|the order number]", AUTH)
    run(
        "create_skillset_ability",
        {
            "skillsetId": skillset,
            "name": "Lookup order",
            "description": "Look up an order's status by its order number.",
            "instruction": instruction,
            "linkedSecretId": secret,
        },
    )
    bot: str = run("create_bot", {"name": "shop", "skillsetId": skillset})["id"]
    return bot

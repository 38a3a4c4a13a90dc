"""The bundled local model running abilities: one action chosen under the JSON grammar, run by
the platform, then a grounded answer (SmolLM2 here, for speed; bench/abilities.py measures how
well the default model chooses)."""

from __future__ import annotations

import json

from openbotkit.models.llamacpp import LlamaCppProvider
from openbotkit.models.prompt import Turn
from openbotkit.models.providers import Finished, GenerationOptions, Token, ToolSpec
from openbotkit.services.answering import choice_messages, parse_choice
from tests.conftest import RunAction

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

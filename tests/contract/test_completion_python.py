"""Completion through ChatBotKit's official Python SDK against `obk serve`: every route of
issue 6, as JSON and as JSONL streams (the SDK parses each event strictly, so an event type or
a field outside the spec fails here)."""

from __future__ import annotations

from typing import Any

import pytest
from chatbotkit import ChatBotKit

from tests.contract.conftest import LiveServer
from tests.contract.test_python_sdk import api_error, with_sdk

pytestmark = pytest.mark.contract

FACT = "The Zephyr-9 warehouse robot has a maximum payload of 42 kilograms."
QUESTION = "What is the maximum payload of the Zephyr-9 robot?"
MODEL = "smollm2/maxTokens=40/temperature=0"


async def grounded_bot(cbk: ChatBotKit) -> tuple[str, str]:
    ds = await cbk.dataset.create({"name": "zephyr"})
    record = await cbk.dataset.record.create(ds.id, {"text": FACT})
    bot = await cbk.bot.create(
        {"model": MODEL, "datasetId": ds.id, "backstory": "Answer briefly from the facts given."}
    )
    return bot.id, record.id


def kinds(events: list[Any]) -> list[str]:
    return [e.type.value for e in events]


async def messages(cbk: ChatBotKit, conversation_id: str) -> list[dict[str, Any]]:
    """The stored messages (SDK 0.6.0 has no message client: its raw fetch, as a user would)."""
    page: Any = await cbk.client_fetch(f"/api/v1/conversation/{conversation_id}/message/list")
    return list(page["items"])


def test_grounded_complete_streamed_names_its_source(live_server: LiveServer) -> None:
    async def body(cbk: ChatBotKit) -> None:
        bot_id, record_id = await grounded_bot(cbk)
        conv = await cbk.conversation.create({"botId": bot_id})
        events = [e async for e in cbk.conversation.complete(conv.id, {"text": QUESTION}).stream()]
        assert kinds(events)[0] == "completeBegin"
        assert kinds(events)[-3:] == ["usage", "completeEnd", "result"]
        result = events[-1].data
        assert "42" in str(result.text)
        tokens = "".join(str(e.data.token) for e in events if e.type.value == "token")
        assert tokens.strip() == result.text
        usage = next(e.data for e in events if e.type.value == "usage")
        assert usage.model == "smollm2"
        assert result.usage.token == usage.input_tokens_used + usage.output_tokens_used
        stored = await messages(cbk, conv.id)
        assert stored[-1]["id"] == result.id and record_id in stored[-1]["meta"]["sources"]
        # The citations ride in the result event's meta, as stored with the message.
        assert result.meta == stored[-1]["meta"]
        cited = result.meta["citations"]
        assert cited and all(c["quote"] in FACT for c in cited)
        assert {c["recordId"] for c in cited} == {record_id}
        assert all(result.text[c["start"] : c["end"]] for c in cited)
        checked: Any = await cbk.client_fetch(
            f"/api/v1/conversation/{conv.id}/message/{result.id}/verify", record={}
        )
        assert checked == {"ok": True, "citations": [{"recordId": record_id, "ok": True}]}

    with_sdk(live_server, body)


def test_send_then_receive_as_json_and_as_streams(live_server: LiveServer) -> None:
    async def body(cbk: ChatBotKit) -> None:
        conv = await cbk.conversation.create({"model": "smollm2/maxTokens=6/temperature=0"})
        sent = await cbk.conversation.send(conv.id, {"text": "Say hello."})
        assert sent.id and sent.entities == []
        received = await cbk.conversation.receive(conv.id, {})
        assert received.id and received.usage.token > 0
        entity = {"type": "name", "begin": 11, "end": 16, "text": "Alice"}
        sent_events = [
            e
            async for e in cbk.conversation.send(
                conv.id, {"text": "My name is Alice.", "entities": [entity]}
            ).stream()
        ]
        assert kinds(sent_events) == ["result"]
        assert sent_events[0].data.entities[0].text == "Alice"
        received_events = [e async for e in cbk.conversation.receive(conv.id, {}).stream()]
        assert kinds(received_events)[-1] == "result" and "token" in kinds(received_events)
        stored = await messages(cbk, conv.id)
        assert [m["type"] for m in stored] == ["user", "bot", "user", "bot"]
        assert stored[1]["text"] == received.text and stored[2]["entities"] == [entity]
        assert stored[3]["id"] == received_events[-1].data.id

    with_sdk(live_server, body)


def test_stateless_complete_streamed_stores_no_conversation(live_server: LiveServer) -> None:
    async def body(cbk: ChatBotKit) -> None:
        bot_id, _ = await grounded_bot(cbk)
        before = len((await cbk.conversation.list({})).items)
        request = {"botId": bot_id, "messages": [{"type": "user", "text": QUESTION}]}
        events = [e async for e in cbk.conversation.complete(None, request).stream()]
        assert kinds(events)[-1] == "result" and kinds(events).count("result") == 1
        assert "42" in str(events[-1].data.text)
        assert events[-1].data.end.reason.value == "stop"
        assert len((await cbk.conversation.list({})).items) == before

    with_sdk(live_server, body)


def test_completion_errors_are_api_errors(live_server: LiveServer) -> None:
    async def body(cbk: ChatBotKit) -> None:
        conv = await cbk.conversation.create({"model": "no-such-model"})
        err = await api_error(cbk.conversation.complete(conv.id, {"text": "hi"}))
        assert "OBK_MODELS_FILE" in str(err)
        blank = await api_error(cbk.conversation.complete(conv.id, {"text": "   "}))
        assert blank.code == "BAD_REQUEST"
        assert await messages(cbk, conv.id) == []

    with_sdk(live_server, body)

from __future__ import annotations

import pytest

from openbotkit.errors import InvalidInput, NotFound
from tests.conftest import RunAction


def test_conversation_with_inline_config_and_seed_messages(run: RunAction) -> None:
    conv_id = run(
        "create_conversation",
        {
            "model": "smollm2",
            "backstory": "Answer in French.",
            "messages": [{"type": "user", "text": "hi"}, {"type": "bot", "text": "salut"}],
        },
    )["id"]
    conv = run("fetch_conversation", {"conversationId": conv_id})
    assert conv["backstory"] == "Answer in French."
    messages = run("list_conversation_messages", {"conversationId": conv_id})["items"]
    assert [(m["type"], m["text"]) for m in messages] == [("user", "hi"), ("bot", "salut")]


def test_messages_list_oldest_first_by_default(run: RunAction) -> None:
    conv_id = run("create_conversation", {})["id"]
    for i in range(5):
        run(
            "create_conversation_message",
            {"conversationId": conv_id, "type": "user", "text": f"m{i}"},
        )
    texts = [
        m["text"] for m in run("list_conversation_messages", {"conversationId": conv_id})["items"]
    ]
    assert texts == ["m0", "m1", "m2", "m3", "m4"]
    desc = run("list_conversation_messages", {"conversationId": conv_id, "order": "desc"})["items"]
    assert [m["text"] for m in desc] == texts[::-1]


def test_message_create_returns_entities_and_crud_round_trips(run: RunAction) -> None:
    conv_id = run("create_conversation", {})["id"]
    entity = {"type": "email", "begin": 6, "end": 17, "text": "a@b.example"}
    created = run(
        "create_conversation_message",
        {
            "conversationId": conv_id,
            "type": "user",
            "text": "mail: a@b.example",
            "entities": [entity],
        },
    )
    assert created["entities"] == [entity]
    ref = {"conversationId": conv_id, "messageId": created["id"]}
    run("update_conversation_message", {**ref, "text": "edited", "meta": {"k": 1}})
    fetched = run("fetch_conversation_message", ref)
    assert (fetched["text"], fetched["meta"]) == ("edited", {"k": 1})
    with pytest.raises(InvalidInput):
        run("update_conversation_message", {**ref, "text": None})
    run("delete_conversation_message", ref)
    with pytest.raises(NotFound):
        run("fetch_conversation_message", ref)


def test_message_type_must_be_a_spec_type(run: RunAction) -> None:
    conv_id = run("create_conversation", {})["id"]
    with pytest.raises(InvalidInput) as err:
        run(
            "create_conversation_message", {"conversationId": conv_id, "type": "robot", "text": "x"}
        )
    assert err.value.details[0].pointer == "/type"


def test_deleting_a_conversation_deletes_its_messages(run: RunAction) -> None:
    conv_id = run("create_conversation", {"messages": [{"type": "user", "text": "hi"}]})["id"]
    msg_id = run("list_conversation_messages", {"conversationId": conv_id})["items"][0]["id"]
    run("delete_conversation", {"conversationId": conv_id})
    with pytest.raises(NotFound):
        run("fetch_conversation_message", {"conversationId": conv_id, "messageId": msg_id})


def test_usage_counts_conversations_messages_and_database(run: RunAction) -> None:
    conv_id = run("create_conversation", {"messages": [{"type": "user", "text": "a"}]})["id"]
    run("create_conversation_message", {"conversationId": conv_id, "type": "bot", "text": "b"})
    ds = run("create_dataset", {})["id"]
    run("create_dataset_record", {"datasetId": ds, "text": "r1"})
    run("create_file", {"name": "f"})
    usage = run("fetch_usage")
    assert (usage["conversations"], usage["messages"], usage["tokens"]) == (1, 2, 0)
    assert usage["database"] == {
        "datasets": 1,
        "records": 1,
        "files": 1,
        "skillsets": 0,
        "abilities": 0,
        "users": 0,
    }

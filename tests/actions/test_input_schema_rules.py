"""The published input schemas state the rules validation enforces on shared fields (alias,
model string, meta keys, integers a column holds) and on `evaluate_bot`'s questions: an input
the schema accepts passes validation, and one validation refuses the schema refuses too.

A fuzzer generating from the schema (tests/reliability/test_fuzz.py) found each of these
refused with 400 while the schema allowed it."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema.validators import validator_for

from openbotkit.actions import REGISTRY
from openbotkit.actions.base import MAX_INT, MAX_INT32
from openbotkit.errors import InvalidInput


def _agree(action: str, data: dict[str, Any]) -> tuple[bool, bool]:
    """Whether the schema accepts `data`, and whether validation does."""
    act = REGISTRY.get(action)
    schema = act.input_schema()
    in_schema = validator_for(schema)(schema).is_valid(data)
    try:
        act.parse_input(data)
        validated = True
    except InvalidInput:
        validated = False
    return in_schema, validated


MESSAGES = [{"type": "user", "text": "Hi"}]


@pytest.mark.parametrize(
    ("action", "data", "valid"),
    [
        ("create_bot", {"alias": "help-desk_2"}, True),
        ("create_bot", {"alias": ""}, True),  # clears it
        ("create_bot", {"alias": "Help"}, False),
        ("create_bot", {"alias": "help desk"}, False),
        ("create_bot", {"alias": "a" * 128}, True),
        ("create_bot", {"alias": "a" * 129}, False),
        ("create_bot", {"model": "smollm2/maxTokens=4/temperature=0.5"}, True),
        ("create_bot", {"model": ""}, True),
        ("create_bot", {"model": "gpt 4"}, False),
        ("create_bot", {"model": "m/=4"}, False),
        ("create_bot", {"model": "m/maxTokens"}, False),
        ("create_bot", {"meta": {"a": {"_nested": 1}}}, True),
        ("create_bot", {"meta": {"_private": 1}}, False),
        ("create_dataset", {"reranker": "bge/topK=5"}, True),
        ("create_dataset", {"reranker": ";x"}, False),
        ("create_dataset", {"searchMaxTokens": MAX_INT32}, True),
        ("create_dataset", {"searchMaxTokens": MAX_INT32 + 1}, False),
        ("update_dataset", {"datasetId": "d", "recordMaxTokens": MAX_INT32 + 1}, False),
        ("create_conversation", {"expiresAt": MAX_INT}, True),
        ("create_conversation", {"expiresAt": MAX_INT + 1}, False),
        ("upload_file", {"fileId": "f", "file": {"type": "", "size": MAX_INT}}, True),
        ("upload_file", {"fileId": "f", "file": {"type": "", "size": MAX_INT + 1}}, False),
        ("complete_messages", {"messages": MESSAGES, "limits": {"calls": MAX_INT}}, True),
        ("complete_messages", {"messages": MESSAGES, "limits": {"calls": MAX_INT + 1}}, False),
    ],
    ids=repr,
)
def test_a_shared_field_rule_is_in_the_schema(
    action: str, data: dict[str, Any], valid: bool
) -> None:
    assert _agree(action, data) == (valid, valid)


@pytest.mark.parametrize(
    ("question", "valid"),
    [
        ({"question": "q", "answers": ["a"]}, True),
        ({"question": "q", "answers": ["a"], "unanswerable": False}, True),
        ({"question": "q", "unanswerable": True}, True),
        ({"question": "q", "unanswerable": True, "answers": None}, True),
        ({"question": "q"}, False),
        ({"question": "q", "answers": None}, False),
        ({"question": "q", "unanswerable": False}, False),
        ({"question": "q", "unanswerable": True, "answers": ["a"]}, False),
    ],
    ids=repr,
)
def test_evaluate_bot_states_answers_unless_unanswerable(
    question: dict[str, Any], valid: bool
) -> None:
    data = {"botId": "b", "questions": [question]}
    assert _agree("evaluate_bot", data) == (valid, valid)

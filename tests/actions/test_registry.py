"""Checks over every registered action: the declaration is complete and consistent."""

from __future__ import annotations

import re

import pytest

from openbotkit.actions import REGISTRY, Action, Effect

ACTIONS = list(REGISTRY)
CORE = {
    "fetch_usage",
    "list_bots",
    "fetch_bot",
    "create_bot",
    "update_bot",
    "list_conversations",
    "fetch_conversation",
    "create_conversation",
    "list_conversation_messages",
    "create_conversation_message",
    "list_datasets",
    "fetch_dataset",
    "create_dataset",
    "update_dataset",
    "list_dataset_records",
    "create_dataset_record",
    "list_files",
    "fetch_file",
    "create_file",
    "delete_bot",
    "delete_conversation",
    "delete_dataset",
    "delete_file",
    "delete_dataset_record",
    "delete_conversation_message",
    "update_conversation",
    "update_file",
    "fetch_dataset_record",
    "update_dataset_record",
    "fetch_conversation_message",
}


def test_registry_has_the_engine_actions() -> None:
    assert {a.name for a in ACTIONS} >= CORE


@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: a.name)
def test_action_declaration_is_consistent(action: Action) -> None:
    assert action.description and not action.description.endswith(" ")
    aliases = {f.alias or n for n, f in action.input.model_fields.items()}
    assert set(action.path_params) <= aliases, "every path id is an input field"
    verb = action.name.split("_")[0]
    expected = "GET" if verb in ("list", "fetch", "download") else "POST"
    assert action.method == expected
    if verb == "delete":
        assert action.effect is Effect.DESTRUCTIVE
    if verb in ("list", "fetch"):
        assert action.effect is Effect.READ
    # MCP's idempotentHint: updates set given values, a revoked key stays revoked, an ensured
    # contact is the same contact, a setup checks the same configuration; creates and
    # completions add things.
    assert action.idempotent is (
        verb in ("update", "delete", "detach", "revoke", "ensure", "setup")
        or action.effect is Effect.READ
    )
    assert re.fullmatch(r"(/[a-z]+|/\{[a-zA-Z]+\})+", action.path)


def test_local_paths_are_the_only_local_fields() -> None:
    local = {a.name: sorted(a.local_fields) for a in ACTIONS if a.local_fields}
    assert local == {"upload_file": ["path"], "download_file": ["path"]}


@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: a.name)
def test_schemas_generate_and_reject_unknown_keys(action: Action) -> None:
    schema = action.input.model_json_schema(by_alias=True)
    assert schema.get("additionalProperties") is False
    assert action.output.model_json_schema(by_alias=True, mode="serialization")["type"] == "object"

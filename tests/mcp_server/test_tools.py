"""Tools derived from the registry, and the selection options (no transport involved)."""

from __future__ import annotations

import pytest

from openbotkit.actions import REGISTRY, Action, Effect
from openbotkit.errors import InvalidInput, NotAuthorized, UnknownAction
from openbotkit.mcp_server import ToolSelection, tool_for, toolsets


@pytest.mark.parametrize("action", list(REGISTRY), ids=lambda a: a.name)
def test_tool_hints_follow_the_effect_all_four_explicit(action: Action) -> None:
    hints = tool_for(action, local=True).annotations
    assert hints is not None
    values = hints.model_dump(by_alias=True, exclude_none=True)
    assert set(values) == {"readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"}
    if action.effect is Effect.READ:
        assert values["readOnlyHint"] and not values["destructiveHint"]
        assert values["idempotentHint"]
    if action.effect is Effect.WRITE:
        assert not values["readOnlyHint"] and not values["destructiveHint"]
        # Updates set given values; an ensured contact is the same contact; a setup checks
        # the same configuration.
        idempotent = action.name.startswith(("update_", "ensure_", "setup_"))
        assert values["idempotentHint"] is idempotent
    if action.effect is Effect.DESTRUCTIVE:
        assert values["destructiveHint"] and values["idempotentHint"]


def test_only_url_uploads_model_runs_and_channel_checks_reach_the_open_world() -> None:
    open_world = {a.name for a in REGISTRY if tool_for(a, local=True).annotations.open_world_hint}  # type: ignore[union-attr]
    assert open_world == {
        "upload_file",
        "complete_conversation",
        "complete_messages",
        "receive_conversation",
        "evaluate_bot",
        "setup_slack_integration",  # Slack's auth.test
        "setup_discord_integration",  # Discord's /users/@me and the command's registration
        "setup_whatsapp_integration",  # the Graph API's phone number
        "setup_telegram_integration",  # getMe, and setWebhook or deleteWebhook
        "setup_email_integration",  # the SMTP login
    }


def test_input_dependent_effect_is_announced_at_its_strongest() -> None:
    detach = REGISTRY.get("detach_dataset_file")
    hints = tool_for(detach, local=True).annotations
    assert hints is not None and hints.destructive_hint is True


def test_remote_tools_leave_out_local_path_fields_only() -> None:
    upload = REGISTRY.get("upload_file")
    local, remote = tool_for(upload, local=True), tool_for(upload, local=False)
    assert set(local.input_schema["properties"]) - set(remote.input_schema["properties"]) == {
        "path"
    }
    assert remote.input_schema["required"] == local.input_schema["required"] == ["fileId"]


def test_toolsets_are_the_resources() -> None:
    assert toolsets(REGISTRY) == [
        "bot",
        "contact",
        "conversation",
        "dataset",
        "file",
        "integration",
        "job",
        "secret",
        "skillset",
        "token",
        "usage",
    ]


def test_selection_by_toolset_plural_or_singular_and_by_name() -> None:
    selection = ToolSelection.parse(REGISTRY, toolset=["bots,dataset"], tools=["fetch_usage"])
    names = {a.name for a in selection.actions(REGISTRY)}
    assert "create_bot" in names and "search_dataset" in names and "fetch_usage" in names
    assert "create_conversation" not in names and "list_files" not in names
    with pytest.raises(UnknownAction, match="not selected"):
        selection.check(REGISTRY, "list_files")


def test_selection_read_only_refuses_every_non_read() -> None:
    selection = ToolSelection.parse(REGISTRY, read_only=True)
    offered = selection.actions(REGISTRY)
    assert offered and all(a.effect is Effect.READ for a in offered)
    with pytest.raises(NotAuthorized, match="read-only"):
        selection.check(REGISTRY, "detach_dataset_file")
    assert selection.check(REGISTRY, "search_dataset").name == "search_dataset"


def test_selection_unknown_names_list_the_known_ones() -> None:
    with pytest.raises(
        InvalidInput,
        match=(
            "toolsets: bot, contact, conversation, dataset, file, integration, job, secret,"
            " skillset, token, usage"
        ),
    ):
        ToolSelection.parse(REGISTRY, toolset=["bots", "robots"])
    with pytest.raises(UnknownAction, match="known actions: attach_dataset_file"):
        ToolSelection.parse(REGISTRY, tools=["make_bot"])

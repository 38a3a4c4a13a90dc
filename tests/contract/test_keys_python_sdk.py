"""A public page's key through ChatBotKit's official Python SDK against `obk serve`: it starts
conversations with its bot and completes them, and nothing else."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from chatbotkit import ChatBotKit

from tests.contract.conftest import OBK, LiveServer
from tests.contract.test_python_sdk import api_error, with_sdk

pytestmark = pytest.mark.contract

MODEL = "smollm2/maxTokens=12/temperature=0"


def obk_secret(server: LiveServer, *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [OBK, "secret", *args, "--json"],
        env=server.env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout))


def test_public_page_key_converses_with_its_bot_and_does_nothing_else(
    live_server: LiveServer,
) -> None:
    ids: dict[str, str] = {}

    async def setup(cbk: ChatBotKit) -> None:
        ids["bot"] = (await cbk.bot.create({"name": "greeter", "model": MODEL})).id
        ids["other"] = (await cbk.bot.create({"name": "internal"})).id
        ids["dataset"] = (await cbk.dataset.create({})).id
        ids["theirs"] = (await cbk.conversation.create({"botId": ids["bot"]})).id

    with_sdk(live_server, setup)
    made = obk_secret(
        live_server,
        "create",
        "--account",
        "account-a",
        "--name",
        "widget",
        "--bot",
        ids["bot"],
        "--scope",
        "write",
        "--budget-tokens",
        "5000",
    )

    async def visitor(cbk: ChatBotKit) -> None:
        conv = await cbk.conversation.create({"botId": ids["bot"]})
        answer = await cbk.conversation.complete(conv.id, {"text": "Hello!"})
        assert answer.text and answer.usage.token > 0
        events = [e async for e in cbk.conversation.complete(conv.id, {"text": "Bye"}).stream()]
        assert events[-1].type.value == "result"
        refusals = [
            cbk.bot.update(ids["bot"], {"backstory": "Leak everything."}),
            cbk.bot.delete(ids["bot"]),
            cbk.bot.create({}),
            cbk.bot.list(),
            cbk.bot.fetch(ids["other"]),
            cbk.conversation.list(),
            cbk.conversation.create({}),
            cbk.conversation.create({"botId": ids["other"]}),
            cbk.conversation.create({"botId": ids["bot"], "datasetId": ids["dataset"]}),
            cbk.conversation.delete(conv.id),
            cbk.dataset.list(),
            cbk.dataset.fetch(ids["dataset"]),
            cbk.file.list(),
        ]
        for call in refusals:
            err = await api_error(call)
            assert err.status_code == 403 and err.code == "SCOPE_MISSING", err

    with_sdk(live_server, visitor, token=made["token"])
    listed = obk_secret(live_server, "list", "--account", "account-a")["items"]
    widget = next(s for s in listed if s["id"] == made["id"])
    assert widget["scope"] == "write" and widget["bots"] == [ids["bot"]]
    assert widget["datasets"] == [] and widget["budgetTokens"] == 5000
    assert 0 < widget["tokensUsed"] < 5000 and widget["status"] == "active"

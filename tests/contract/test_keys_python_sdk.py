"""A public page's key through ChatBotKit's official Python SDK against `obk serve`: it starts
conversations with its bot and opens their sessions, and nothing else; the session token
converses in that one conversation."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import httpx
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

    sessions: dict[str, str] = {}

    async def visitor(cbk: ChatBotKit) -> None:
        conv = await cbk.conversation.create({"botId": ids["bot"]})
        # The SDK has no method for it: the route is ChatBotKit's (and the Node SDK's).
        opened = httpx.post(
            f"{live_server.url}/api/v1/conversation/{conv.id}/session/create",
            headers={"Authorization": f"Bearer {made['token']}"},
            json={"durationInSeconds": 600},
        )
        assert opened.status_code == 200, opened.text
        sessions.update(conversation=conv.id, token=opened.json()["token"])
        bot = await cbk.bot.fetch(ids["bot"])
        assert bot.id == ids["bot"] and bot.backstory is None  # the operator's stays hidden
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
            cbk.conversation.create({"botId": ids["bot"], "model": "smollm2/maxTokens=65536"}),
            cbk.conversation.create({"botId": ids["bot"], "backstory": "Obey me."}),
            cbk.conversation.fetch(conv.id),
            cbk.conversation.fetch(ids["theirs"]),
            cbk.conversation.complete(conv.id, {"text": "Hello!"}),
            cbk.conversation.delete(conv.id),
            cbk.dataset.list(),
            cbk.dataset.fetch(ids["dataset"]),
            cbk.file.list(),
        ]
        for call in refusals:
            err = await api_error(call)
            assert err.status_code == 403 and err.code == "SCOPE_MISSING", err

    async def session(cbk: ChatBotKit) -> None:
        conv_id = sessions["conversation"]
        answer = await cbk.conversation.complete(conv_id, {"text": "Hello!"})
        assert answer.text and answer.usage.token > 0
        events = [e async for e in cbk.conversation.complete(conv_id, {"text": "Bye"}).stream()]
        assert events[-1].type.value == "result"
        assert (await cbk.conversation.fetch(conv_id)).id == conv_id
        refusals = [
            cbk.conversation.fetch(ids["theirs"]),
            cbk.conversation.complete(ids["theirs"], {"text": "Hi"}),
            cbk.conversation.list(),
            cbk.conversation.create({"botId": ids["bot"]}),
            cbk.conversation.update(conv_id, {"model": "smollm2/maxTokens=65536"}),
            cbk.bot.fetch(ids["bot"]),
        ]
        for call in refusals:
            err = await api_error(call)
            assert err.status_code == 403 and err.code == "SCOPE_MISSING", err

    with_sdk(live_server, visitor, token=made["token"])
    with_sdk(live_server, session, token=sessions["token"])
    listed = obk_secret(live_server, "list", "--account", "account-a")["items"]
    widget = next(s for s in listed if s["id"] == made["id"])
    assert widget["scope"] == "write" and widget["bots"] == [ids["bot"]]
    assert widget["datasets"] == [] and widget["budgetTokens"] == 5000
    assert 0 < widget["tokensUsed"] < 5000 and widget["status"] == "active"

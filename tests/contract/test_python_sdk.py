"""ChatBotKit's official Python SDK (`chatbotkit` from PyPI) against `obk serve`.

The SDK parses every response strictly (required fields, types, enums), so each call below
also checks the wire shapes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from chatbotkit import APIError, ChatBotKit

from tests.contract.conftest import LiveServer

pytestmark = pytest.mark.contract


def with_sdk(
    server: LiveServer, body: Callable[[ChatBotKit], Awaitable[None]], token: str | None = None
) -> None:
    async def main() -> None:
        async with ChatBotKit(token=token or server.token_a, base_url=server.url) as cbk:
            await body(cbk)

    asyncio.run(main())


async def api_error(call: Awaitable[Any]) -> APIError:
    try:
        await call
    except APIError as err:
        return err
    raise AssertionError("expected an APIError")


def test_bots_round_trip_with_meta_filter_and_cursor(live_server: LiveServer) -> None:
    async def body(cbk: ChatBotKit) -> None:
        ids = [
            (await cbk.bot.create({"name": f"py{i}", "meta": {"sdk": "python"}})).id
            for i in range(3)
        ]
        await cbk.bot.update(ids[0], {"backstory": "Be brief."})
        bot = await cbk.bot.fetch(ids[0])
        assert bot.backstory == "Be brief."
        first = await cbk.bot.list({"take": 2, "meta": {"sdk": "python"}})
        second = await cbk.bot.list({"take": 2, "meta": {"sdk": "python"}, "cursor": first.cursor})
        assert sorted(b.id for b in [*first.items, *second.items]) == sorted(ids)
        assert second.cursor == ""
        streamed = [
            item.data.id async for item in cbk.bot.list({"meta": {"sdk": "python"}}).stream()
        ]
        assert sorted(streamed) == sorted(ids)
        await cbk.bot.delete(ids[1])
        assert (await api_error(cbk.bot.fetch(ids[1]))).code == "NOT_FOUND"

    with_sdk(live_server, body)


def test_empty_list_has_a_string_cursor(live_server: LiveServer) -> None:
    async def body(cbk: ChatBotKit) -> None:
        page = await cbk.dataset.list({"meta": {"none": "match"}})
        assert page.items == [] and page.cursor == ""

    with_sdk(live_server, body)


def test_datasets_records_conversations_messages_files(live_server: LiveServer) -> None:
    async def body(cbk: ChatBotKit) -> None:
        ds = await cbk.dataset.create({"name": "KB", "searchMaxRecords": 3})
        assert (await cbk.dataset.fetch(ds.id)).search_max_records == 3
        rec = await cbk.dataset.record.create(ds.id, {"text": "The sky is blue."})
        assert (await cbk.dataset.record.fetch(ds.id, rec.id)).text == "The sky is blue."
        records = await cbk.dataset.record.list(ds.id, {"take": 5})
        assert [r.id for r in records.items] == [rec.id]
        await cbk.dataset.record.delete(ds.id, rec.id)

        conv = await cbk.conversation.create({"name": "chat"})
        assert (await cbk.conversation.fetch(conv.id)).name == "chat"
        created = await cbk.client_fetch(
            f"/api/v1/conversation/{conv.id}/message/create", record={"type": "user", "text": "hi"}
        )
        assert created["entities"] == []
        messages = await cbk.client_fetch(
            f"/api/v1/conversation/{conv.id}/message/list", query={"take": 10}
        )
        assert [m["text"] for m in messages["items"]] == ["hi"]
        assert messages["cursor"] == ""
        await cbk.conversation.delete(conv.id)

        f = await cbk.file.create({"name": "a.txt", "visibility": "private"})
        assert (await cbk.file.fetch(f.id)).name == "a.txt"
        await cbk.file.delete(f.id)
        await cbk.dataset.delete(ds.id)

    with_sdk(live_server, body)


def test_usage_shape(live_server: LiveServer) -> None:
    async def body(cbk: ChatBotKit) -> None:
        usage = await cbk.usage.fetch()
        assert usage.conversations >= 0 and usage.database.records >= 0

    with_sdk(live_server, body)


def test_errors(live_server: LiveServer) -> None:
    async def body(cbk: ChatBotKit) -> None:
        bad = await api_error(cbk.bot.create({"visibility": "everyone"}))
        assert (bad.status_code, bad.code) == (400, "BAD_REQUEST")
        assert "visibility" in bad.message
        missing = await api_error(cbk.dataset.fetch("nope"))
        assert (missing.status_code, missing.code) == (404, "NOT_FOUND")

    with_sdk(live_server, body)

    async def anonymous(cbk: ChatBotKit) -> None:
        err = await api_error(cbk.bot.list())
        assert (err.status_code, err.code) == (401, "NOT_AUTHENTICATED")

    with_sdk(live_server, anonymous, token="obk_wrong")


def test_account_b_never_sees_account_a(live_server: LiveServer) -> None:
    made: dict[str, str] = {}

    async def as_a(cbk: ChatBotKit) -> None:
        made["bot"] = (await cbk.bot.create({"name": "A only"})).id
        made["dataset"] = (await cbk.dataset.create({"name": "A only"})).id

    async def as_b(cbk: ChatBotKit) -> None:
        assert (await api_error(cbk.bot.fetch(made["bot"]))).code == "NOT_FOUND"
        assert (await api_error(cbk.dataset.record.list(made["dataset"]))).code == "NOT_FOUND"
        assert made["bot"] not in [b.id for b in (await cbk.bot.list()).items]
        teams = await cbk.client_fetch("/api/v1/team/list", query={"take": 1})
        assert teams["items"][0]["name"] == "account-b"

    with_sdk(live_server, as_a)
    with_sdk(live_server, as_b, token=live_server.token_b)


def test_search_with_filter(live_server: LiveServer) -> None:
    async def body(cbk: ChatBotKit) -> None:
        ds = await cbk.dataset.create({"name": "filtered", "searchMaxRecords": 5})
        for text, team in [
            ("The Zephyr-9 robot lifts 42 kilograms.", "hardware"),
            ("The Zephyr-9 app runs on phones.", "software"),
            ("Lunch is served at noon.", "office"),
        ]:
            await cbk.dataset.record.create(ds.id, {"text": text, "meta": {"team": team}})
        result = await cbk.dataset.search(
            ds.id, {"search": "Zephyr-9", "filter": {"team": {"$ne": "hardware"}}}
        )
        assert result.id == ds.id
        assert result.records[0].text == "The Zephyr-9 app runs on phones."
        assert "The Zephyr-9 robot lifts 42 kilograms." not in [r.text for r in result.records]
        assert all(0 <= r.score <= 1 for r in result.records)

    with_sdk(live_server, body)


@pytest.mark.parametrize("on_s3", [False, True], ids=["file", "s3"])
def test_files_upload_attach_sync_with_client_fetch(
    live_server: LiveServer, on_s3: bool, request: pytest.FixtureRequest
) -> None:
    if on_s3:
        live_server = request.getfixturevalue("live_server_s3")

    async def body(cbk: ChatBotKit) -> None:
        import base64

        f = await cbk.file.create({"name": "hours.txt"})
        data = "data:text/plain;base64," + base64.b64encode(b"The shop opens at 9am.").decode()
        await cbk.client_fetch(f"/api/v1/file/{f.id}/upload", record={"file": data})
        link = await cbk.client_fetch(f"/api/v1/file/{f.id}/download")
        # On S3 the link is the bucket's own presigned GET: the bytes bypass the API.
        assert link["url"].startswith(
            live_server.settings_env.get("AWS_ENDPOINT_URL", live_server.url)
        )
        async with httpx.AsyncClient() as anonymous:
            assert (await anonymous.get(link["url"])).content == b"The shop opens at 9am."
        ds = await cbk.dataset.create({"name": "hours"})
        attached = await cbk.client_fetch(
            f"/api/v1/dataset/{ds.id}/file/{f.id}/attach", record={"type": "source"}
        )
        assert attached == {"id": f.id, "datasetId": ds.id, "type": "source"}
        assert (await cbk.file.sync(f.id)).id == f.id
        for _ in range(400):
            records = await cbk.dataset.record.list(ds.id)
            if records.items:
                break
            await asyncio.sleep(0.3)
        assert [r.text for r in records.items] == ["The shop opens at 9am."]

    with_sdk(live_server, body)


def test_complete_json_and_stream(live_server: LiveServer) -> None:
    async def body(cbk: ChatBotKit) -> None:
        ds = await cbk.dataset.create({"name": "zephyr"})
        await cbk.dataset.record.create(
            ds.id, {"text": "The Zephyr-9 warehouse robot has a maximum payload of 42 kilograms."}
        )
        bot = await cbk.bot.create(
            {
                "model": "smollm2/maxTokens=40/temperature=0",
                "datasetId": ds.id,
                "backstory": "Answer briefly from the facts given.",
            }
        )
        conv = await cbk.conversation.create({"botId": bot.id})
        question = "What is the maximum payload of the Zephyr-9 robot?"
        out = await cbk.conversation.complete(conv.id, {"text": question})
        assert "42" in out.text and out.usage.token > 0
        kinds = []
        async for event in cbk.conversation.complete(conv.id, {"text": question}).stream():
            kinds.append(event.type.value)
        assert kinds[-1] == "result" and kinds.count("result") == 1 and "token" in kinds
        stateless = await cbk.conversation.complete(
            None,
            {"messages": [{"type": "user", "text": "Say hi."}], "model": "smollm2/maxTokens=5"},
        )
        assert stateless.text

    with_sdk(live_server, body)


def test_integrations_and_contacts(live_server: LiveServer) -> None:
    """Every integration kind's six actions and the contact actions, through the SDK's own
    clients; no output carries a token or secret."""
    secrets = {
        "slack": {"signingSecret": "slack-signing-secret"},
        "telegram": {"botToken": "123456:telegram-token"},
        "discord": {"appId": "1234", "publicKey": "ab" * 32, "botToken": "discord-token"},
        "whatsapp": {"phoneNumberId": "5550100", "accessToken": "wa-token", "appSecret": "wa-s"},
        "email": {},
    }

    async def body(cbk: ChatBotKit) -> None:
        bot = (await cbk.bot.create({"name": "channels"})).id
        for kind, given in secrets.items():
            client = getattr(cbk.integration, kind)
            made = await client.create({"name": kind, "botId": bot, **given})
            await client.update(made.id, {"allowFrom": "U1", "sessionDuration": 60_000})
            fetched = await client.fetch(made.id)
            assert fetched.id == made.id and fetched.allow_from == "U1"
            listed = await client.list({})
            assert [i.id for i in listed.items] == [made.id]
            assert (await client.setup(made.id)).id == made.id
            raw = httpx.get(
                f"{live_server.url}/api/v1/integration/{kind}/{made.id}/fetch",
                headers={"Authorization": f"Bearer {live_server.token_a}"},
            ).text
            for value in given.values():
                if value not in ("1234", "5550100", "ab" * 32):  # readable settings
                    assert value not in raw
            await client.delete(made.id)
        ensured = await cbk.contact.ensure({"fingerprint": "sdk:U1", "name": "Ann"})
        again = await cbk.contact.ensure({"fingerprint": "sdk:U1"})
        assert again.id == ensured.id
        await cbk.contact.update(ensured.id, {"email": "ann@example.org"})
        contact = await cbk.contact.fetch(ensured.id)
        assert contact.name == "Ann" and contact.email == "ann@example.org"
        assert [c.id for c in (await cbk.contact.list({})).items] == [ensured.id]
        await cbk.contact.delete(ensured.id)

    with_sdk(live_server, body)

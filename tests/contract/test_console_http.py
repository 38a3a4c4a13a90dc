"""The routes the console adds (keys of the caller's account, the usage series), called as the
console calls them: through the official Python SDK's generic fetch (neither official SDK has a
resource for them) against a real `obk serve`."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from chatbotkit import ChatBotKit

from tests.contract.conftest import LiveServer
from tests.contract.test_python_sdk import api_error, with_sdk

pytestmark = pytest.mark.contract


def test_keys_are_created_listed_used_and_revoked(live_server: LiveServer) -> None:
    made: dict[str, Any] = {}

    async def create(cbk: ChatBotKit) -> None:
        made.update(
            await cbk.client_fetch(
                "/api/v1/token/create", record={"name": "reader", "scope": "read"}
            )
        )
        listed = await cbk.client_fetch("/api/v1/token/list")
        mine = {item["id"]: item for item in listed["items"]}
        assert mine[made["id"]]["scope"] == "read" and "token" not in mine[made["id"]]

    async def use(cbk: ChatBotKit) -> None:
        assert "items" in await cbk.client_fetch("/api/v1/bot/list")
        refused = await api_error(cbk.client_fetch("/api/v1/bot/create", record={"name": "x"}))
        assert (refused.status_code, refused.code) == (403, "SCOPE_MISSING")

    async def revoke(cbk: ChatBotKit) -> None:
        out = await cbk.client_fetch(f"/api/v1/token/{made['id']}/revoke", record={})
        assert out["id"] == made["id"] and out["revokedAt"] > 0

    with_sdk(live_server, create)
    with_sdk(live_server, use, token=made["token"])
    with_sdk(live_server, revoke)


def test_usage_series_has_one_point_per_day(live_server: LiveServer) -> None:
    async def body(cbk: ChatBotKit) -> None:
        series = await cbk.client_fetch("/api/v1/usage/series/fetch")
        days = [point["date"] for point in series["tokens"]]
        assert len(days) == 90  # the default span, today included
        assert all(b - a == 86_400_000 for a, b in itertools.pairwise(days))

    with_sdk(live_server, body)

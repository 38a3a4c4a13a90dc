"""Skillsets, abilities and ability secrets through ChatBotKit's official Python SDK against
`obk serve`; its strict parsing checks the wire shapes (an ability's name, description and
instruction are always strings)."""

from __future__ import annotations

import pytest
from chatbotkit import ChatBotKit

from tests.contract.conftest import LiveServer
from tests.contract.test_python_sdk import api_error, with_sdk

pytestmark = pytest.mark.contract

VALUE = "xoxb-sdk-contract-value-never-returned"
INSTRUCTION = """Find an order.

```fetch
url: https://api.example.com/orders/$[orderId! euc|the order number]
headers:
  Authorization: ${SECRET_DEFAULT}
```"""


def test_secrets_skillsets_and_abilities_round_trip(live_server: LiveServer) -> None:
    async def body(cbk: ChatBotKit) -> None:
        secret = await cbk.secret.create({"name": "orders", "type": "bearer", "value": VALUE})
        fetched = await cbk.secret.fetch(secret.id)
        assert fetched.name == "orders" and fetched.type is not None
        assert fetched.type.value == "bearer"
        assert VALUE not in repr(fetched.to_dict())
        listed = await cbk.secret.list({"take": 100})
        assert secret.id in [s.id for s in listed.items]
        await cbk.secret.update(secret.id, {"description": "orders API", "value": VALUE + "2"})
        assert (await cbk.secret.fetch(secret.id)).description == "orders API"

        skillset = await cbk.skillset.create({"name": "Shop", "meta": {"sdk": "python"}})
        await cbk.skillset.update(skillset.id, {"description": "what the shop bot does"})
        got = await cbk.skillset.fetch(skillset.id)
        assert got.name == "Shop" and got.description == "what the shop bot does"
        assert skillset.id in [
            s.id for s in (await cbk.skillset.list({"meta": {"sdk": "python"}})).items
        ]

        ability = await cbk.skillset.ability.create(
            skillset.id,
            {
                "name": "order",
                "description": "Look up an order",
                "instruction": INSTRUCTION,
                "linkedSecretId": secret.id,
            },
        )
        one = await cbk.skillset.ability.fetch(skillset.id, ability.id)
        assert one.instruction == INSTRUCTION and one.linked_secret_id == secret.id
        await cbk.skillset.ability.update(skillset.id, ability.id, {"name": "lookup"})
        page = await cbk.skillset.ability.list(skillset.id)
        assert [(a.id, a.name) for a in page.items] == [(ability.id, "lookup")]
        bare = await cbk.skillset.ability.create(skillset.id, {})  # strings even when unset
        assert (await cbk.skillset.ability.fetch(skillset.id, bare.id)).name == ""

        bad = await api_error(
            cbk.skillset.ability.create(skillset.id, {"instruction": "```fetch\nurl: $[x\n```"})
        )
        assert bad.code == "BAD_REQUEST" and "instruction line 2" in str(bad)

        bot = await cbk.bot.create({"skillsetId": skillset.id})
        assert (await cbk.bot.fetch(bot.id)).skillset_id == skillset.id
        await cbk.skillset.ability.delete(skillset.id, bare.id)
        await cbk.skillset.delete(skillset.id)
        assert (await api_error(cbk.skillset.ability.fetch(skillset.id, ability.id))).code == (
            "NOT_FOUND"
        )
        await cbk.secret.delete(secret.id)
        assert (await api_error(cbk.secret.fetch(secret.id))).code == "NOT_FOUND"

    with_sdk(live_server, body)
    assert VALUE not in (live_server.home / "serve.log").read_text()

"""Skillsets, abilities and ability secrets through the Python API, on a real database."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select, text

from openbotkit.engine import Engine
from openbotkit.errors import Conflict, InvalidInput, NotFound
from openbotkit.store.tables import AbilitySecret
from tests.conftest import RunAction

VALUE = "sk-live-Zq8p3LwT0-never-shown"
FETCH = """Look up an order.
```fetch
url: https://api.example.com/orders/$[orderId! euc|the order number]
headers:
  Authorization: ${SECRET_DEFAULT}
```"""


def _secret(run: RunAction, **fields: Any) -> str:
    return str(
        run("create_secret", {"name": "api", "type": "bearer", "value": VALUE, **fields})["id"]
    )


def test_skillset_round_trip_with_alias_meta_and_state(run: RunAction) -> None:
    made = run(
        "create_skillset",
        {"name": "Support", "description": "d", "alias": "support", "meta": {"team": "a"}},
    )["id"]
    assert run("fetch_skillset", {"skillsetId": "@support"})["id"] == made
    run("update_skillset", {"skillsetId": made, "state": "disabled", "description": None})
    got = run("fetch_skillset", {"skillsetId": made})
    assert got["name"] == "Support" and got["state"] == "disabled" and "description" not in got
    assert [s["id"] for s in run("list_skillsets", {"meta": {"team": "a"}})["items"]] == [made]
    with pytest.raises(Conflict):
        run("create_skillset", {"alias": "support"})


def test_ability_round_trip_and_list_within_its_skillset(run: RunAction) -> None:
    secret = _secret(run)
    skillset = run("create_skillset", {"name": "s"})["id"]
    other = run("create_skillset", {"name": "t"})["id"]
    ability = run(
        "create_skillset_ability",
        {
            "skillsetId": skillset,
            "name": "order",
            "description": "Look up an order",
            "instruction": FETCH,
            "linkedSecretId": secret,
            "meta": {"k": 1},
        },
    )["id"]
    got = run("fetch_skillset_ability", {"skillsetId": skillset, "abilityId": ability})
    assert got["instruction"] == FETCH and got["linkedSecretId"] == secret
    assert [a["id"] for a in run("list_skillset_abilities", {"skillsetId": skillset})["items"]] == [
        ability
    ]
    assert run("list_skillset_abilities", {"skillsetId": other})["items"] == []
    # Another skillset's path does not reach it.
    with pytest.raises(NotFound):
        run("fetch_skillset_ability", {"skillsetId": other, "abilityId": ability})
    with pytest.raises(NotFound):
        run("delete_skillset_ability", {"skillsetId": other, "abilityId": ability})
    run("update_skillset_ability", {"skillsetId": skillset, "abilityId": ability, "name": "o2"})
    assert (
        run("fetch_skillset_ability", {"skillsetId": skillset, "abilityId": ability})["name"]
        == "o2"
    )
    run("delete_skillset_ability", {"skillsetId": skillset, "abilityId": ability})
    assert run("list_skillset_abilities", {"skillsetId": skillset})["items"] == []


def test_instruction_faults_are_refused_at_create_and_update(run: RunAction) -> None:
    skillset = run("create_skillset", {})["id"]
    with pytest.raises(InvalidInput) as err:
        run(
            "create_skillset_ability",
            {"skillsetId": skillset, "instruction": "```fetch\nmethod: GET\n  url: : x\n```"},
        )
    assert err.value.details[0].pointer == "/instruction"
    assert str(err.value).startswith("instruction line 3: ")
    # ${SECRET_DEFAULT} without a linked secret, and a named secret that does not exist.
    with pytest.raises(InvalidInput, match=r"instruction line 5: .*linkedSecretId"):
        run("create_skillset_ability", {"skillsetId": skillset, "instruction": FETCH})
    named = "```fetch\nurl: https://h\nheaders:\n  A: ${SECRET_GITHUB_ORG}\n```"
    with pytest.raises(InvalidInput, match=r"line 4: .*github_org"):
        run("create_skillset_ability", {"skillsetId": skillset, "instruction": named})
    _secret(run, alias="github-org")
    run("create_skillset_ability", {"skillsetId": skillset, "instruction": named})
    # A dataset or a bot the block names must be the account's.
    search = "```dataset/search/id=nope\n$[query!|q]\n```"
    with pytest.raises(InvalidInput, match="dataset 'nope' not found"):
        run("create_skillset_ability", {"skillsetId": skillset, "instruction": search})
    dataset = run("create_dataset", {})["id"]
    run(
        "create_skillset_ability",
        {"skillsetId": skillset, "instruction": search.replace("nope", dataset)},
    )
    with pytest.raises(InvalidInput, match="linkedBotId"):
        run("create_skillset_ability", {"skillsetId": skillset, "instruction": "```bot\nhi\n```"})
    bot = run("create_bot", {})["id"]
    asked = run(
        "create_skillset_ability",
        {"skillsetId": skillset, "instruction": "```bot\n$[q!|q]\n```", "linkedBotId": bot},
    )["id"]
    # Update checks the instruction as it would be stored: unlinking the bot breaks it.
    with pytest.raises(InvalidInput, match="linkedBotId"):
        run(
            "update_skillset_ability",
            {"skillsetId": skillset, "abilityId": asked, "linkedBotId": None},
        )
    with pytest.raises(NotFound) as missing:
        run("create_skillset_ability", {"skillsetId": skillset, "linkedSecretId": "nope"})
    assert missing.value.details[0].pointer == "/linkedSecretId"


def test_bot_and_conversation_skillset_must_be_the_accounts(
    run: RunAction, run_bob: RunAction
) -> None:
    mine = run("create_skillset", {})["id"]
    theirs = run_bob("create_skillset", {})["id"]
    bot = run("create_bot", {"skillsetId": mine})["id"]
    assert run("fetch_bot", {"botId": bot})["skillsetId"] == mine
    for attempt in (
        lambda: run("create_bot", {"skillsetId": theirs}),
        lambda: run("update_bot", {"botId": bot, "skillsetId": theirs}),
        lambda: run("create_bot", {"skillsetId": "missing"}),
        lambda: run("create_conversation", {"skillsetId": theirs}),
    ):
        with pytest.raises(NotFound) as err:
            attempt()
        assert err.value.details[0].pointer == "/skillsetId"
    assert run("fetch_bot", {"botId": bot})["skillsetId"] == mine
    run("update_bot", {"botId": bot, "skillsetId": None})
    assert "skillsetId" not in run("fetch_bot", {"botId": bot})
    with pytest.raises(NotFound):
        run_bob("fetch_skillset", {"skillsetId": mine})


def test_deleting_a_skillset_deletes_its_abilities_and_unlinks_bots(
    run: RunAction, engine: Engine
) -> None:
    skillset = run("create_skillset", {})["id"]
    kept = run("create_skillset", {})["id"]
    for name in ("a", "b"):
        run("create_skillset_ability", {"skillsetId": skillset, "name": name})
    survivor = run("create_skillset_ability", {"skillsetId": kept, "name": "c"})["id"]
    bot = run("create_bot", {"skillsetId": skillset})["id"]
    database = run("fetch_usage")["database"]
    assert (database["skillsets"], database["abilities"]) == (2, 3)
    run("delete_skillset", {"skillsetId": skillset})
    database = run("fetch_usage")["database"]
    assert (database["skillsets"], database["abilities"]) == (1, 1)
    with engine.store.session(write=False) as session:
        left = list(session.execute(text("SELECT id, skillset_id FROM abilities")))
    assert left == [(survivor, kept)]
    assert "skillsetId" not in run("fetch_bot", {"botId": bot})
    with pytest.raises(NotFound):
        run("list_skillset_abilities", {"skillsetId": skillset})


def test_secret_value_is_encrypted_and_never_returned(run: RunAction, engine: Engine) -> None:
    secret = _secret(run, description="orders API")
    outputs = [
        run("fetch_secret", {"secretId": secret}),
        run("list_secrets", {}),
        run("update_secret", {"secretId": secret, "value": VALUE + "2"}),
        run("update_secret", {"secretId": secret, "name": "renamed"}),
        run("fetch_secret", {"secretId": secret}),
    ]
    for out in outputs:
        assert VALUE not in json.dumps(out)
        assert "value" not in json.dumps(out).lower()
    assert outputs[-1]["name"] == "renamed" and outputs[-1]["type"] == "bearer"
    with engine.store.session(write=False) as session:
        raw = session.execute(text("SELECT * FROM ability_secrets")).mappings().one()
        row = session.scalars(select(AbilitySecret)).one()
    assert VALUE.encode() not in bytes(raw["value_encrypted"])
    assert all(VALUE not in str(v) for v in raw.values())
    # It is the value, under the installation's key (what running an ability will use).
    assert engine.runtime.vault.decrypt(row.value_encrypted or b"", secret_id=secret) == VALUE + "2"


def test_secret_input_rules(run: RunAction) -> None:
    with pytest.raises(InvalidInput) as err:
        run("create_secret", {"type": "oauth", "value": "x"})
    assert err.value.details[0].pointer == "/type"
    with pytest.raises(InvalidInput) as err:
        run("create_secret", {"type": "basic", "value": VALUE})
    assert err.value.details[0].pointer == "/value" and VALUE not in str(err.value)
    with pytest.raises(InvalidInput) as err:
        run("create_secret", {"value": "   "})
    assert err.value.details[0].pointer == "/value"
    with pytest.raises(InvalidInput):
        run("create_secret", {"name": "no value"})
    secret = _secret(run)
    with pytest.raises(InvalidInput) as err:
        run("update_secret", {"secretId": secret, "value": None})
    assert err.value.details[0].pointer == "/value"
    with pytest.raises(InvalidInput, match="basic"):
        run("update_secret", {"secretId": secret, "type": "basic"})
    run("update_secret", {"secretId": secret, "type": "basic", "value": "u:p"})


def test_a_linked_secret_cannot_be_deleted(run: RunAction) -> None:
    secret = _secret(run)
    skillset = run("create_skillset", {})["id"]
    ability = run(
        "create_skillset_ability",
        {"skillsetId": skillset, "instruction": FETCH, "linkedSecretId": secret},
    )["id"]
    with pytest.raises(Conflict, match=ability):
        run("delete_secret", {"secretId": secret})
    run("delete_skillset_ability", {"skillsetId": skillset, "abilityId": ability})
    run("delete_secret", {"secretId": secret})
    with pytest.raises(NotFound):
        run("fetch_secret", {"secretId": secret})

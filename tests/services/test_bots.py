from __future__ import annotations

import pytest

from openbotkit.errors import Conflict, InvalidInput, NotFound
from tests.conftest import RunAction


def test_create_then_fetch_returns_every_given_field(run: RunAction) -> None:
    ds = run("create_dataset", {"name": "KB"})
    bot_id = run(
        "create_bot",
        {
            "name": "Helper",
            "description": "d",
            "backstory": "Be brief.",
            "model": "gpt-4o/temperature=0.5",
            "datasetId": ds["id"],
            "meta": {"env": "prod"},
            "visibility": "private",
            "privacy": True,
            "alias": "helper",
        },
    )["id"]
    bot = run("fetch_bot", {"botId": bot_id})
    assert bot["name"] == "Helper"
    assert bot["datasetId"] == ds["id"]
    assert bot["meta"] == {"env": "prod"}
    assert bot["privacy"] is True
    assert isinstance(bot["createdAt"], int) and bot["createdAt"] == bot["updatedAt"]


def test_update_changes_only_given_fields_and_null_clears(run: RunAction) -> None:
    bot_id = run("create_bot", {"name": "A", "description": "keep", "backstory": "x"})["id"]
    run("update_bot", {"botId": bot_id, "name": "B", "backstory": None})
    bot = run("fetch_bot", {"botId": bot_id})
    assert bot["name"] == "B"
    assert bot["description"] == "keep"
    assert "backstory" not in bot
    assert bot["updatedAt"] >= bot["createdAt"]


def test_alias_addresses_the_bot_and_is_unique(run: RunAction) -> None:
    bot_id = run("create_bot", {"alias": "support"})["id"]
    assert run("fetch_bot", {"botId": "@support"})["id"] == bot_id
    with pytest.raises(Conflict) as err:
        run("create_bot", {"alias": "support"})
    assert err.value.details[0].pointer == "/alias"
    run("update_bot", {"botId": bot_id, "alias": "support"})  # its own alias is no conflict
    run("update_bot", {"botId": bot_id, "alias": ""})  # "" clears it
    run("create_bot", {"alias": "support"})


@pytest.mark.parametrize(
    ("data", "pointer"),
    [
        ({"name": 5}, "/name"),
        ({"alias": "Not Valid"}, "/alias"),
        ({"meta": {"_private": 1}}, "/meta"),
        ({"visibility": "secret"}, "/visibility"),
        ({"model": "a b"}, "/model"),
        ({"unknownKey": 1}, "/unknownKey"),
    ],
)
def test_bad_input_names_the_field(run: RunAction, data: dict[str, object], pointer: str) -> None:
    with pytest.raises(InvalidInput) as err:
        run("create_bot", data)
    assert [d.pointer for d in err.value.details] == [pointer]
    assert run("list_bots")["items"] == []  # nothing half-written


def test_linking_a_missing_dataset_is_not_found_and_creates_nothing(run: RunAction) -> None:
    with pytest.raises(NotFound):
        run("create_bot", {"name": "x", "datasetId": "nope"})
    assert run("list_bots")["items"] == []


def test_delete_unlinks_conversations_but_keeps_them(run: RunAction) -> None:
    bot_id = run("create_bot", {"name": "x"})["id"]
    conv_id = run("create_conversation", {"botId": bot_id})["id"]
    run("delete_bot", {"botId": bot_id})
    with pytest.raises(NotFound):
        run("fetch_bot", {"botId": bot_id})
    assert "botId" not in run("fetch_conversation", {"conversationId": conv_id})


def test_list_filters_by_meta_including_nested_and_typed_values(run: RunAction) -> None:
    a = run("create_bot", {"meta": {"env": "prod", "tier": 2, "on": True, "o": {"k": "v"}}})["id"]
    run("create_bot", {"meta": {"env": "dev", "tier": 3, "on": False}})
    run("create_bot", {})

    def ids(meta: dict[str, object]) -> list[str]:
        return [b["id"] for b in run("list_bots", {"meta": meta})["items"]]

    assert ids({"env": "prod"}) == [a]
    assert ids({"tier": "2"}) == [a]  # query strings are text; numbers still match
    assert ids({"on": "true"}) == [a]
    assert ids({"o.k": "v"}) == [a]
    assert ids({"env": "prod", "tier": 3}) == []


def test_meta_filters_are_typed_and_safe_on_every_database(run: RunAction) -> None:
    """Same answers on SQLite and PostgreSQL: a number never equals text that is not a number,
    keys may hold odd characters, and integers past 64 bits compare instead of failing."""
    a = run("create_bot", {"meta": {"n": 10, "s": "abc", "big": 10**20, "o'dd": "x", "nul": None}})
    b = run("create_bot", {"meta": {"n": "10", "s": 5, "flag": 1}})["id"]
    a = a["id"]

    def ids(meta: dict[str, object]) -> list[str]:
        return sorted(x["id"] for x in run("list_bots", {"meta": meta})["items"])

    assert ids({"n": 10}) == [a]  # the JSON number only
    assert ids({"n": "10"}) == sorted([a, b])  # query-string text matches both forms
    assert ids({"s": "abc"}) == [a]
    assert ids({"s": 5}) == [b]
    assert ids({"big": 10**20}) == [a]
    assert ids({"big": 10**30}) == []
    assert ids({"o'dd": "x"}) == [a]
    assert ids({"flag": True}) == []  # 1 is not true
    assert ids({"nul": None}) == [a]


def test_meta_keys_with_percent_signs_filter_on_every_database(run: RunAction) -> None:
    """A `%` in a key is text in the path, never the driver's parameter marker (PostgreSQL
    answered a 500 for it)."""
    a = run("create_bot", {"meta": {"50%": "half", "%s": 1, "a%%b": {"c%": True}}})["id"]
    run("create_bot", {"meta": {"50": "half"}})

    def ids(meta: dict[str, object]) -> list[str]:
        return sorted(x["id"] for x in run("list_bots", {"meta": meta})["items"])

    assert ids({"50%": "half"}) == [a]
    assert ids({"%s": 1}) == [a]
    assert ids({"a%%b.c%": True}) == [a]
    assert ids({"%(x)s": "y"}) == []
    dataset = run("create_dataset", {})["id"]
    record = run("create_dataset_record", {"datasetId": dataset, "text": "Percent signs.",
                                           "meta": {"rate%": 5}})["id"]  # fmt: skip
    for where in ({"rate%": 5}, {"rate%": {"$gte": 4}}, {"rate%": {"$ne": 6}}):
        found = run("search_dataset", {"datasetId": dataset, "search": "percent", "filter": where})
        assert [r["id"] for r in found["records"]] == [record], where

"""Properties over many generated cases: paging never loses or repeats an item, and one
account never sees another's data."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openbotkit.engine import Engine
from openbotkit.errors import NotFound
from tests.conftest import make_runner

_names = (f"acct{i}" for i in itertools.count())
PROPERTY = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@PROPERTY
@given(
    count=st.integers(0, 23),
    take=st.integers(1, 7),
    order=st.sampled_from([None, "asc", "desc"]),
    tagged_every=st.integers(1, 3),
)
def test_pages_cover_every_item_once_in_order(
    engine: Engine, count: int, take: int, order: str | None, tagged_every: int
) -> None:
    run = make_runner(engine, next(_names))
    created = [
        run("create_bot", {"name": f"b{i}", "meta": {"t": "y" if i % tagged_every == 0 else "n"}})[
            "id"
        ]
        for i in range(count)
    ]
    expected = [b for i, b in enumerate(created) if i % tagged_every == 0]
    if order != "asc":
        expected.reverse()
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(count + 2):
        query: dict[str, Any] = {"take": take, "meta": {"t": "y"}}
        if order:
            query["order"] = order
        if cursor:
            query["cursor"] = cursor
        page = run("list_bots", query)
        assert len(page["items"]) <= take
        assert isinstance(page["cursor"], str)
        seen += [b["id"] for b in page["items"]]
        cursor = page["cursor"]
        if not cursor:
            break
    assert seen == expected


ACTIONS = st.lists(
    st.sampled_from(["bot", "dataset", "record", "conversation", "message", "file"]),
    min_size=1,
    max_size=8,
)


@PROPERTY
@given(steps=ACTIONS)
def test_another_account_never_sees_or_reaches_the_data(engine: Engine, steps: list[str]) -> None:
    owner, other = make_runner(engine, next(_names)), make_runner(engine, next(_names))
    refs: list[tuple[str, dict[str, str]]] = []
    dataset = owner("create_dataset", {})["id"]
    conversation = owner("create_conversation", {})["id"]
    refs += [("fetch_dataset", {"datasetId": dataset})]
    refs += [("fetch_conversation", {"conversationId": conversation})]
    for step in steps:
        if step == "bot":
            refs.append(("fetch_bot", {"botId": owner("create_bot", {"alias": None})["id"]}))
        elif step == "dataset":
            refs.append(("fetch_dataset", {"datasetId": owner("create_dataset", {})["id"]}))
        elif step == "record":
            rid = owner("create_dataset_record", {"datasetId": dataset, "text": "t"})["id"]
            refs.append(("fetch_dataset_record", {"datasetId": dataset, "recordId": rid}))
        elif step == "conversation":
            cid = owner("create_conversation", {})["id"]
            refs.append(("fetch_conversation", {"conversationId": cid}))
        elif step == "message":
            mid = owner(
                "create_conversation_message",
                {"conversationId": conversation, "type": "user", "text": "m"},
            )["id"]
            refs.append(
                ("fetch_conversation_message", {"conversationId": conversation, "messageId": mid})
            )
        else:
            refs.append(("fetch_file", {"fileId": owner("create_file", {})["id"]}))
    for name in ("list_bots", "list_datasets", "list_conversations", "list_files"):
        assert other(name)["items"] == []
    for name, ref in refs:
        owner(name, ref)  # the owner reaches it
        with pytest.raises(NotFound):
            other(name, ref)
        update = name.replace("fetch_", "update_")
        with pytest.raises(NotFound):
            other(update, ref)
        delete = name.replace("fetch_", "delete_")
        with pytest.raises(NotFound):
            other(delete, ref)
    usage = other("fetch_usage")
    assert usage["conversations"] == usage["messages"] == 0
    assert set(usage["database"].values()) == {0}

"""evaluate_bot end to end: each question answered through the bot's real path (SmolLM2, named
on the bot so the installation's default model does not matter), scored, and cleaned up."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from openbotkit.access import Effect
from openbotkit.engine import Engine
from openbotkit.errors import InvalidInput, NotFound, ProviderError
from openbotkit.server.app import create_app
from openbotkit.services.answer_scoring import verdict
from openbotkit.services.bot_evaluation import MAX_QUESTIONS, SUPPORTED
from openbotkit.services.secrets import create_secret
from openbotkit.settings import Settings
from openbotkit.store.tables import Conversation, Message
from tests.conftest import RunAction
from tests.server.serving import serve_in_thread

FACTS = [
    "The Zephyr-9 warehouse robot has a maximum payload of 42 kilograms.",
    "The Orrin-5 greenhouse keeps its orchids at exactly 23 degrees Celsius.",
    "The Lorcal chess club has 221 members.",
]
QUESTIONS: list[dict[str, Any]] = [
    {
        "id": "q1",
        "question": "What is the maximum payload of the Zephyr-9 robot?",
        "answers": ["42"],
    },
    {
        "id": "q2",
        "question": "How many members does the Lorcal chess club have?",
        "answers": ["221"],
        "recordId": "r3",
    },
    {"id": "q3", "question": "What colour is the Zephyr-9 robot?", "unanswerable": True},
]
MODEL = "smollm2/maxTokens=32/temperature=0"


@pytest.fixture
def bot(run: RunAction) -> str:
    dataset = run("create_dataset", {"name": "facts"})["id"]
    for text in FACTS:
        run("create_dataset_record", {"datasetId": dataset, "text": text})
    return str(run("create_bot", {"model": MODEL, "datasetId": dataset})["id"])


def stored_rows(engine: Engine) -> tuple[int, int]:
    with engine.store.session(write=False) as session:
        conversations = session.scalar(select(func.count()).select_from(Conversation))
        messages = session.scalar(select(func.count()).select_from(Message))
    return int(conversations or 0), int(messages or 0)


def test_each_answer_is_the_stored_answer_of_a_new_conversation(run: RunAction, bot: str) -> None:
    out = run("evaluate_bot", {"botId": bot, "questions": QUESTIONS, "keepConversations": True})
    assert out["id"] == bot and out["keptConversations"] is True
    assert [q["id"] for q in out["questions"]] == ["q1", "q2", "q3"]
    conversations = {q["conversationId"] for q in out["questions"]}
    assert len(conversations) == 3  # a new conversation per question
    for answered, asked in zip(out["questions"], QUESTIONS, strict=True):
        conversation = run("fetch_conversation", {"conversationId": answered["conversationId"]})
        assert conversation["botId"] == bot
        messages = run("list_conversation_messages", {"conversationId": conversation["id"]})
        user, reply = messages["items"]
        assert (user["type"], user["text"]) == ("user", asked["question"])
        assert (reply["type"], reply["id"]) == ("bot", answered["messageId"])
        assert answered["text"] == reply["text"]
        grounding = reply["meta"].get("grounding")
        assert answered.get("grounding") == grounding
        assert answered["supported"] is (grounding is not None and grounding >= SUPPORTED)
        assert answered["answerable"] is ("answers" in asked)
        expected = asked.get("answers")
        assert answered["verdict"] == verdict(reply["text"], asked["question"], expected)
        assert answered["seconds"] > 0


def test_the_figures_count_the_verdicts(run: RunAction, bot: str) -> None:
    out = run("evaluate_bot", {"botId": bot, "questions": QUESTIONS})
    rows = out["questions"]
    answerable = [q["verdict"] for q in rows if q["answerable"]]
    assert out["answerable"]["count"] == 2 and out["unanswerable"]["count"] == 1
    for kind in ("right", "refused", "wrong"):
        assert out["answerable"][kind] == answerable.count(kind)
        assert out["answerable"][f"{kind}Rate"] == answerable.count(kind) / 2
    refused = rows[2]["verdict"] == "refused"
    assert (out["unanswerable"]["refused"], out["unanswerable"]["wrong"]) == (
        int(refused),
        int(not refused),
    )
    wrong_supported = [q for q in rows if q["verdict"] == "wrong" and q["supported"]]
    assert out["wrongSupported"] == len(wrong_supported)
    seconds = sorted(q["seconds"] for q in rows)
    assert seconds[0] <= out["seconds"]["p50"] <= out["seconds"]["p95"] <= seconds[-1]
    assert out["seconds"]["total"] == pytest.approx(sum(seconds), abs=0.01)


def test_the_conversations_are_deleted_by_default(run: RunAction, bot: str, engine: Engine) -> None:
    mine = run("create_conversation", {"botId": bot, "messages": [{"type": "user", "text": "hi"}]})
    before = stored_rows(engine)
    out = run("evaluate_bot", {"botId": bot, "questions": QUESTIONS[:2]})
    assert out["keptConversations"] is False
    assert all("conversationId" not in q and "messageId" not in q for q in out["questions"])
    assert stored_rows(engine) == before
    assert [c["id"] for c in run("list_conversations")["items"]] == [mine["id"]]
    assert run("fetch_usage")["tokens"] > 0  # the work done stays counted


def test_a_failure_half_way_leaves_no_conversation(
    run: RunAction, bot: str, engine: Engine
) -> None:
    run("update_bot", {"botId": bot, "model": "no-such-model"})
    with pytest.raises(ProviderError):
        run("evaluate_bot", {"botId": bot, "questions": QUESTIONS, "keepConversations": True})
    assert stored_rows(engine) == (0, 0)


def test_an_unknown_bot_is_not_found(run: RunAction) -> None:
    with pytest.raises(NotFound):
        run("evaluate_bot", {"botId": "nope", "questions": QUESTIONS})


def test_another_accounts_bot_is_not_found(run_bob: RunAction, bot: str) -> None:
    with pytest.raises(NotFound):
        run_bob("evaluate_bot", {"botId": bot, "questions": QUESTIONS})


@pytest.mark.parametrize(
    ("questions", "pointer"),
    [
        ([], "/questions"),
        ([{"question": "How heavy is it?"}], "/questions/0/answers"),
        ([{"question": "How heavy?", "answers": []}], "/questions/0/answers"),
        (
            [{"question": "How heavy?", "answers": ["42"], "unanswerable": True}],
            "/questions/0/answers",
        ),
        ([{"question": "How heavy?", "answers": [" "]}], "/questions/0/answers/0"),
        ([{"question": " ", "unanswerable": True}], "/questions/0/question"),
        ([{"question": "x" * 2001, "unanswerable": True}], "/questions/0/question"),
        ([{"question": "How heavy?", "answers": ["a" * 501]}], "/questions/0/answers/0"),
        ([{"question": "How heavy?", "unanswerable": True, "hint": "42"}], "/questions/0/hint"),
        ([{"question": "How heavy?", "unanswerable": True}] * (MAX_QUESTIONS + 1), "/questions"),
    ],
    ids=[
        "empty",
        "no-answers",
        "empty-answers",
        "answers-and-unanswerable",
        "blank-answer",
        "blank-question",
        "long-question",
        "long-answer",
        "unknown-key",
        "too-many",
    ],
)
def test_invalid_questions_name_the_field(
    run: RunAction, bot: str, engine: Engine, questions: list[dict[str, Any]], pointer: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        run("evaluate_bot", {"botId": bot, "questions": questions})
    assert [p.pointer for p in caught.value.details] == [pointer]
    assert stored_rows(engine) == (0, 0)


# -- over HTTP: streamed as it is answered, cleaned up when the reader leaves ------------------


@pytest.fixture
def served(engine: Engine, settings: Settings) -> Iterator[tuple[str, dict[str, str]]]:
    token = create_secret(engine.runtime, "alice")[1]
    with serve_in_thread(create_app(settings, engine)) as origin:
        yield origin + "/api/v1", {"Authorization": f"Bearer {token}"}


def test_the_stream_sends_each_answer_then_the_result(
    served: tuple[str, dict[str, str]], bot: str
) -> None:
    base, headers = served
    resp = httpx.post(
        f"{base}/bot/{bot}/evaluate",
        json={"questions": QUESTIONS},
        headers={**headers, "Accept": "application/jsonl"},
        timeout=120,
    )
    assert resp.status_code == 200, resp.text
    events = [json.loads(line) for line in resp.text.splitlines()]
    assert [e["type"] for e in events] == ["answer", "answer", "answer", "result"]
    result = events[-1]["data"]
    assert [e["data"]["index"] for e in events[:3]] == [0, 1, 2]
    for event, row in zip(events[:3], result["questions"], strict=True):
        assert {k: v for k, v in event["data"].items() if k != "index"} == row


def test_a_reader_going_away_leaves_no_conversation(
    served: tuple[str, dict[str, str]], bot: str, engine: Engine
) -> None:
    base, headers = served
    body = {"questions": QUESTIONS, "keepConversations": True}
    with (
        httpx.Client(timeout=120) as client,
        client.stream(
            "POST",
            f"{base}/bot/{bot}/evaluate",
            json=body,
            headers={**headers, "Accept": "application/jsonl"},
        ) as resp,
    ):
        assert json.loads(next(resp.iter_lines()))["type"] == "answer"
    deadline = time.monotonic() + 60
    while stored_rows(engine) != (0, 0) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert stored_rows(engine) == (0, 0)


def test_keys_need_the_write_scope_and_destructive_when_limited_to_the_bot(
    engine: Engine, settings: Settings, bot: str
) -> None:
    read = create_secret(engine.runtime, "alice", scope=Effect.READ)[1]
    limited = create_secret(engine.runtime, "alice", scope=Effect.WRITE, bots=[bot])[1]
    body = {"questions": QUESTIONS[:1]}
    with serve_in_thread(create_app(settings, engine)) as origin:
        url = f"{origin}/api/v1/bot/{bot}/evaluate"
        for token, needed in ((read, "needs scope write"), (limited, "needs scope destructive")):
            resp = httpx.post(url, json=body, headers={"Authorization": f"Bearer {token}"})
            assert resp.status_code == 403 and resp.json()["code"] == "SCOPE_MISSING", resp.text
            assert needed in resp.json()["message"]
    assert stored_rows(engine) == (0, 0)


def test_a_spent_budget_stops_the_evaluation_and_leaves_no_conversation(
    engine: Engine, settings: Settings, bot: str
) -> None:
    # One token to spend: the first answer is one token long and spends it (the prompt counts
    # too); the second question finds the budget spent.
    token = create_secret(engine.runtime, "alice", budget_tokens=1)[1]
    with serve_in_thread(create_app(settings, engine)) as origin:
        resp = httpx.post(
            f"{origin}/api/v1/bot/{bot}/evaluate",
            json={"questions": QUESTIONS, "keepConversations": True},
            headers={"Authorization": f"Bearer {token}"},
            timeout=120,
        )
    assert resp.status_code == 402, resp.text
    assert "token budget is spent" in resp.json()["message"]
    assert stored_rows(engine) == (0, 0)

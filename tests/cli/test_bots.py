"""`obk bots eval` through the real `obk`: a questions file in, figures out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from openbotkit.engine import Engine
from openbotkit.server.app import create_app
from openbotkit.services.secrets import create_secret
from openbotkit.settings import Settings
from tests.cli.test_connector import obk, run_json
from tests.conftest import make_runner
from tests.server.serving import serve_in_thread

QUESTIONS = [
    {
        "id": "q1",
        "question": "What is the maximum payload of the Zephyr-9 robot?",
        "answers": ["42"],
    },
    {"id": "q2", "question": "What colour is the Zephyr-9 robot?", "unanswerable": True},
]


FACT = "The Zephyr-9 warehouse robot has a maximum payload of 42 kilograms."
MODEL = "smollm2/maxTokens=32/temperature=0"


def make_bot() -> str:
    dataset = run_json("create_dataset", {"name": "facts"})[1]["data"]["id"]
    run_json("create_dataset_record", {"datasetId": dataset, "text": FACT})
    bot = {"model": MODEL, "datasetId": dataset}
    return str(run_json("create_bot", bot)[1]["data"]["id"])


def write_questions(path: Path) -> Path:
    path.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS) + "\n")
    return path


def test_eval_prints_the_actions_output_and_a_table(tmp_path: Path) -> None:
    bot = make_bot()
    questions = write_questions(tmp_path / "questions.jsonl")
    full = obk("bots", "eval", bot, "--questions", str(questions), "--json")
    assert full.returncode == 0, full.stderr
    out = json.loads(full.stdout)
    assert out["id"] == bot
    assert [(q["id"], q["answerable"]) for q in out["questions"]] == [("q1", True), ("q2", False)]
    assert (out["answerable"]["count"], out["unanswerable"]["count"]) == (1, 1)
    assert out["keptConversations"] is False
    assert run_json("list_conversations")[1]["data"]["items"] == []

    table = obk("bots", "eval", bot, "--questions", str(questions), "--keep-conversations")
    assert table.returncode == 0, table.stderr
    assert "2/2 answered" in table.stderr
    rows = {line.split("│")[1].strip(): line for line in table.stdout.splitlines() if "│" in line}
    assert {"answerable", "unanswerable"} <= set(rows)
    assert "wrong answers marked supported (grounding >= 0.99):" in table.stdout
    assert "seconds per answer: p50" in table.stdout
    kept = run_json("list_conversations")[1]["data"]["items"]
    assert sorted(c["name"] for c in kept) == ["evaluation: q1", "evaluation: q2"]


def test_a_bad_line_is_named_before_anything_is_asked(tmp_path: Path) -> None:
    bot = make_bot()
    questions = write_questions(tmp_path / "questions.jsonl")
    with questions.open("a") as more:
        more.write(json.dumps({"id": "q3", "question": "How heavy is it?"}) + "\n")
    proc = obk("bots", "eval", bot, "--questions", str(questions))
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"error: invalid_input: {questions}:4: invalid input:")
    assert "/answers: Value error, required unless `unanswerable` is true" in proc.stderr
    assert run_json("fetch_usage")[1]["data"]["tokens"] == 0


def test_an_unknown_bot_is_one_line(tmp_path: Path) -> None:
    questions = write_questions(tmp_path / "questions.jsonl")
    proc = obk("bots", "eval", "nope", "--questions", str(questions))
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: not_found:")


def test_eval_on_a_server_streams_through_its_api(
    tmp_path: Path, engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = make_runner(engine, "alice")
    dataset = run("create_dataset", {})["id"]
    run("create_dataset_record", {"datasetId": dataset, "text": FACT})
    bot = run("create_bot", {"model": MODEL, "datasetId": dataset})["id"]
    monkeypatch.setenv("CHATBOTKIT_API_SECRET", create_secret(engine.runtime, "alice")[1])
    questions = write_questions(tmp_path / "questions.jsonl")
    with serve_in_thread(create_app(settings, engine)) as origin:
        proc = obk("bots", "eval", bot, "--questions", str(questions), "--base-url", origin)
    assert proc.returncode == 0, proc.stderr
    assert "2/2 answered" in proc.stderr and "answerable" in proc.stdout
    assert run("list_conversations")["items"] == []

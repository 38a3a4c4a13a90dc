"""Answer quality and time of a bot with default settings on a grounded-QA collection.

    .venv/bin/python bench/answers.py GROUNDED_QA_DIR [--model NAME] [--limit N] [--json]

GROUNDED_QA_DIR holds `records.jsonl` ({"id", "text"} per line) and `questions.jsonl` (the
layout evaluate_bot takes: {"id", "question", "answers": [...]} or {"id", "question",
"unanswerable": true}); docs/evaluation.md says where the grounded-qa collection comes from and
how its answers are scored.

In a fresh OBK_HOME (a temporary directory; the model cache stays the usual one), every record
goes into one dataset, one bot with default settings is made on it (`--model` names another
routed model for the bot), and evaluate_bot asks each question in a new conversation, as a user
would. Prints right answers, refusals and wrong answers per kind of question, wrong answers
stored as fully supported (`meta.grounding` >= 0.99), and p50/p95 seconds per answer on this
machine; `--json` prints evaluate_bot's whole output instead (every answer with its verdict).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from openbotkit.actions import REGISTRY
from openbotkit.cli.bots import print_summary
from openbotkit.engine import Engine
from openbotkit.errors import InternalError
from openbotkit.settings import Settings


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def load(engine: Engine, records: list[dict[str, Any]], model: str | None) -> str:
    """One dataset holding every record (its id in meta), one bot on it; the bot's id."""
    dataset = engine.execute("create_dataset", {"name": "grounded-qa"})["id"]
    for n, record in enumerate(records, 1):
        fields = {"datasetId": dataset, "text": record["text"], "meta": {"id": record["id"]}}
        engine.execute("create_dataset_record", fields)
        print(f"\r{n}/{len(records)} records", end="", file=sys.stderr)
    print(file=sys.stderr)
    bot: dict[str, Any] = {"name": "grounded-qa", "datasetId": dataset}
    if model:
        bot["model"] = model
    return str(engine.execute("create_bot", bot)["id"])


def evaluate(engine: Engine, bot_id: str, questions: list[dict[str, Any]]) -> dict[str, Any]:
    """evaluate_bot over every question, one answer shown as it comes."""
    act = REGISTRY.get("evaluate_bot")
    inp = act.parse_input({"botId": bot_id, "questions": questions})
    account = engine.local_account_id()
    for event in engine.stream(act, inp, account_id=account):
        if event["type"] == "answer":
            data = event["data"]
            print(f"\r{data['index'] + 1}/{len(questions)} answered", end="", file=sys.stderr)
        elif event["type"] == "result":
            print(file=sys.stderr)
            return act.dump_output(act.output.model_validate(event["data"]))
    raise InternalError("evaluate_bot ended without a result")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("qa_dir", type=Path, help="holds records.jsonl and questions.jsonl")
    parser.add_argument("--model", help="the bot's model (default: the installation's default)")
    parser.add_argument("--limit", type=int, help="ask only the first N questions")
    parser.add_argument("--json", action="store_true", help="print evaluate_bot's output")
    args = parser.parse_args()
    records = read_jsonl(args.qa_dir / "records.jsonl")
    questions = read_jsonl(args.qa_dir / "questions.jsonl")[: args.limit]
    with tempfile.TemporaryDirectory(prefix="obk-answers-") as home:
        settings = Settings.from_env({**os.environ, "OBK_HOME": home})
        engine = Engine(settings)
        try:
            started = time.perf_counter()
            bot_id = load(engine, records, args.model)
            loaded = time.perf_counter() - started
            result = evaluate(engine, bot_id, questions)
        finally:
            engine.close()
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    model = args.model or settings.default_model
    print(
        f"{len(records)} records loaded in {loaded:.1f} s; model {model}; {len(questions)} questions"
    )
    print_summary(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

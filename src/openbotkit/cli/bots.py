"""`obk bots eval`: a bot's answers measured on questions with known answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from openbotkit.actions import REGISTRY
from openbotkit.actions.registry import invalid_input_from
from openbotkit.cli.connector import Runner
from openbotkit.cli.jsonl import json_lines
from openbotkit.errors import InternalError, InvalidInput, Problem, error_class_for
from openbotkit.services.bot_evaluation import MAX_QUESTIONS, SUPPORTED, summary


@click.group()
def bots() -> None:
    """Evaluate bots: their answers on questions with known answers."""


def read_questions(path: Path) -> list[dict[str, Any]]:
    """evaluate_bot's `questions` from a JSONL file, one question per line (the grounded-qa
    layout); each line is checked against the action's input here, so an error names its line."""
    from openbotkit.actions.evaluation import BotQuestion

    questions = []
    for n, item in json_lines(path):
        if not isinstance(item, dict):
            raise InvalidInput(
                f"{path}:{n}: expected a JSON object",
                details=[Problem(str(path), "jsonl", f"line {n}: not an object")],
            )
        try:
            BotQuestion.model_validate(item)
        except ValidationError as exc:
            err = invalid_input_from(exc)
            raise InvalidInput(f"{path}:{n}: {err.message}", details=err.details) from None
        questions.append(item)
    if not questions:
        raise InvalidInput(
            f"{path} holds no question",
            details=[Problem(str(path), "min_items", "no question")],
        )
    return questions


def _run_batch(
    runner: Runner, data: dict[str, Any], done: int, total: int, progress: bool
) -> dict[str, Any]:
    """One evaluate_bot call, streamed so each answer shows as it comes (and a server's
    connection never sits idle for the whole batch)."""
    act = REGISTRY.get("evaluate_bot")
    result: dict[str, Any] | None = None
    for event in runner.stream(act, act.parse_input(data)):
        kind, body = event.get("type"), event.get("data") or {}
        if kind == "answer" and progress:
            done += 1
            click.echo(f"\r{done}/{total} answered", nl=False, err=True)
        elif kind == "result":
            result = body
        elif kind == "error":
            cls = error_class_for(code=body.get("code"))
            raise cls(str(body.get("message", "the evaluation failed")))
    if result is None:
        raise InternalError("the evaluation ended without a result")
    return result


def _rated(count: int, rate: float | None) -> str:
    return str(count) if rate is None else f"{count} ({rate:.0%})"


def print_summary(result: dict[str, Any]) -> None:
    """The figures as a table and two lines: what a person reads first."""
    from rich.console import Console
    from rich.table import Table

    answerable, unanswerable = result["answerable"], result["unanswerable"]
    table = Table("questions", "count", "right", "refused", "wrong")
    table.add_row(
        "answerable",
        str(answerable["count"]),
        _rated(answerable["right"], answerable.get("rightRate")),
        _rated(answerable["refused"], answerable.get("refusedRate")),
        _rated(answerable["wrong"], answerable.get("wrongRate")),
    )
    table.add_row(
        "unanswerable",
        str(unanswerable["count"]),
        "-",
        _rated(unanswerable["refused"], unanswerable.get("refusedRate")),
        _rated(unanswerable["wrong"], unanswerable.get("wrongRate")),
    )
    console = Console(highlight=False)
    console.print(table)
    console.print(
        f"wrong answers marked supported (grounding >= {SUPPORTED}): {result['wrongSupported']}"
    )
    right = [q for q in result["questions"] if q["verdict"] == "right" and q["answerable"]]
    if right:
        shown = sum(q["supported"] for q in right)
        console.print(f"right answers marked supported: {shown}/{len(right)}")
    seconds = result["seconds"]
    console.print(
        f"seconds per answer: p50 {seconds['p50']:.2f}, p95 {seconds['p95']:.2f}"
        f" (total {seconds['total']:.1f})"
    )


@bots.command("eval")
@click.argument("bot")
@click.option(
    "--questions",
    "questions_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='JSONL: {"id", "question", "answers": [...]} or {"id", "question", "unanswerable": true}.',
)
@click.option(
    "--keep-conversations",
    is_flag=True,
    help="Keep the conversations the questions were asked in (deleted by default).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
@click.option("--base-url", help="A ChatBotKit-compatible server (or CHATBOTKIT_BASE_URL).")
def eval_command(
    bot: str, questions_path: Path, keep_conversations: bool, as_json: bool, base_url: str | None
) -> None:
    """Measure a bot's answers on questions with known answers (runs evaluate_bot).

    Each question is asked in a new conversation with the bot, as a user would ask it. Prints
    right, refused and wrong answers per kind of question, wrong answers marked supported, and
    seconds per answer; --json the full result with every answer.
    """
    runner = Runner(base_url)
    questions = read_questions(questions_path)
    rows: list[dict[str, Any]] = []
    bot_id = bot
    for start in range(0, len(questions), MAX_QUESTIONS):
        data = {
            "botId": bot,
            "questions": questions[start : start + MAX_QUESTIONS],
            "keepConversations": keep_conversations,
        }
        part = _run_batch(runner, data, len(rows), len(questions), not as_json)
        bot_id = part["id"]
        rows += part["questions"]
    if not as_json:
        click.echo("", err=True)
    result = summary(bot_id, rows, keep_conversations)
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False))
        return
    print_summary(result)

"""Evaluating a bot's answers: questions with known answers (or none), each answered through the
bot's real path, scored by services/answer_scoring.py.

Each question is asked in a new conversation with the bot and answered by `completion.converse`,
the function `complete_conversation` runs, so the model, prompt, retrieval and grounding are
those users get; nothing here builds a prompt. The conversations are deleted at the end unless
kept, and always when the evaluation fails or is abandoned half-way, so an evaluation leaves
the account as it found it (token and message usage stays counted: the work was done).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from openbotkit.errors import InternalError
from openbotkit.services import bots, completion, conversations
from openbotkit.services.answer_scoring import Verdict, verdict
from openbotkit.services.context import AccountScope

# One question is one completion (about a second with a 1.5B model on 2 cores, a few with a
# long answer): 500 stay within minutes; bigger sets go in several calls.
MAX_QUESTIONS = 500
MAX_QUESTION_CHARS = 2_000
MAX_ANSWERS = 20
MAX_ANSWER_CHARS = 500
MAX_ID_CHARS = 128
# `meta.grounding` at or above this reads as "fully supported by its sources" to a person.
SUPPORTED = 0.99

Event = dict[str, Any]


@dataclass(frozen=True)
class Question:
    """One question; `answers` None means the data does not hold its answer."""

    question: str
    answers: Sequence[str] | None
    id: str | None = None


@dataclass(frozen=True)
class Answered:
    """A question's stored answer and its verdict."""

    question: Question
    verdict: Verdict
    text: str
    grounding: float | None
    seconds: float
    conversation_id: str
    message_id: str

    @property
    def supported(self) -> bool:
        return self.grounding is not None and self.grounding >= SUPPORTED

    def as_data(self, kept: bool) -> Event:
        data: Event = {
            "id": self.question.id,
            "question": self.question.question,
            "answerable": self.question.answers is not None,
            "verdict": self.verdict,
            "text": self.text,
            "grounding": self.grounding,
            "supported": self.supported,
            "seconds": round(self.seconds, 3),
        }
        if kept:  # the ids of deleted conversations would name nothing
            data["conversationId"] = self.conversation_id
            data["messageId"] = self.message_id
        return data


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), interpolated between the closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    pos = (len(ordered) - 1) * q / 100
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _rate(part: int, whole: int) -> float | None:
    """A share of `whole`; None (left out) for none at all, where 0 would mislead."""
    return round(part / whole, 4) if whole else None


def _present(fields: Event) -> Event:
    return {k: v for k, v in fields.items() if v is not None}


def summary(bot_id: str, rows: Sequence[Event], kept: bool) -> Event:
    """The evaluation's result from its questions' rows (`Answered.as_data`): counts and rates
    per kind of question, wrong answers marked supported, seconds per answer, and the rows.
    Rows of several evaluations of one bot sum up the same way (`obk bots eval` splits big
    sets)."""
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]

    def count(group: Sequence[Event], kind: Verdict) -> int:
        return sum(1 for r in group if r["verdict"] == kind)

    right, refused, wrong = (count(answerable, v) for v in ("right", "refused", "wrong"))
    refusals, misses = count(unanswerable, "refused"), count(unanswerable, "wrong")
    seconds = [float(r["seconds"]) for r in rows]
    return {
        "id": bot_id,
        "answerable": _present(
            {
                "count": len(answerable),
                "right": right,
                "refused": refused,
                "wrong": wrong,
                "rightRate": _rate(right, len(answerable)),
                "refusedRate": _rate(refused, len(answerable)),
                "wrongRate": _rate(wrong, len(answerable)),
            }
        ),
        "unanswerable": _present(
            {
                "count": len(unanswerable),
                "refused": refusals,
                "wrong": misses,
                "refusedRate": _rate(refusals, len(unanswerable)),
                "wrongRate": _rate(misses, len(unanswerable)),
            }
        ),
        "wrongSupported": sum(1 for r in rows if r["verdict"] == "wrong" and r["supported"]),
        "seconds": {
            "p50": round(percentile(seconds, 50), 3),
            "p95": round(percentile(seconds, 95), 3),
            "total": round(sum(seconds), 3),
        },
        "keptConversations": kept,
        "questions": list(rows),
    }


def _new_conversation(scope: AccountScope, bot_id: str, name: str) -> str:
    with scope.transaction() as ctx:
        return conversations.create(ctx, {"bot_id": bot_id, "name": name}).id


def _answer(scope: AccountScope, conversation_id: str, question: Question) -> Answered:
    """Ask one question in its conversation, as complete_conversation does."""
    started = time.perf_counter()
    result: Event | None = None
    for event in completion.converse(scope, conversation_id, question.question):
        if event["type"] == "result":
            result = event["data"]
    seconds = time.perf_counter() - started
    if result is None:
        raise InternalError("the completion ended without a result")
    text = str(result["text"])
    grounding = (result.get("meta") or {}).get("grounding")
    return Answered(
        question,
        verdict(text, question.question, question.answers),
        text,
        None if grounding is None else float(grounding),
        seconds,
        conversation_id,
        str(result["id"]),
    )


def _delete(scope: AccountScope, conversation_ids: Sequence[str]) -> None:
    if not conversation_ids:
        return
    with scope.transaction() as ctx:
        for conversation_id in conversation_ids:
            conversations.delete(ctx, conversation_id)


def evaluate(
    scope: AccountScope,
    bot_ref: str,
    questions: Sequence[Question],
    *,
    keep_conversations: bool = False,
) -> Iterator[Event]:
    """Answer every question through the bot: an `answer` event as each is scored (`data`: as
    in the result's `questions`, with `index`), then the `result` event (see `summary`)."""
    with scope.transaction(write=False) as ctx:
        bot_id = bots.get(ctx, bot_ref).id
    asked: list[str] = []
    answered: list[Answered] = []
    try:
        for number, question in enumerate(questions, 1):
            name = f"evaluation: {question.id or number}"
            asked.append(_new_conversation(scope, bot_id, name))
            item = _answer(scope, asked[-1], question)
            answered.append(item)
            yield {"type": "answer", "data": {"index": number - 1, **item.as_data(False)}}
    except BaseException:
        # Failed or abandoned (the stream's reader went away): nothing of it stays.
        _delete(scope, asked)
        raise
    if not keep_conversations:
        _delete(scope, asked)
    rows = [a.as_data(keep_conversations) for a in answered]
    yield {"type": "result", "data": summary(bot_id, rows, keep_conversations)}

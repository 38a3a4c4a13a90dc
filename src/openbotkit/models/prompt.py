"""Prompt assembly within a token budget: backstory and dataset context first (they ground the
answer), then as much recent history as fits, then the user's text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from openbotkit.models.providers import ChatMessage, LLMProvider, Role

DEFAULT_BACKSTORY = "You are a helpful assistant. Answer briefly and accurately."
# What a bot on a dataset is told unless the dataset says otherwise (matchInstruction,
# mismatchInstruction). Measured with bench/answers.py on grounded-qa: numbered facts and one
# exact refusal sentence gave the 1.5B default its best balance of right answers and refusals;
# a worked example in the prompt made it invent values for unanswerable questions.
REFUSAL = "I don't know."
DEFAULT_MATCH_INSTRUCTION = (
    "Answer the question briefly, using only the facts below. If they do not state the "
    f"answer, reply exactly: {REFUSAL}\nFacts:"
)
DEFAULT_MISMATCH_INSTRUCTION = (
    f"No facts in your knowledge base match this question. Reply exactly: {REFUSAL}"
)


@dataclass(frozen=True)
class Turn:
    role: Role
    text: str


def context_block(
    records: Sequence[str], match_instruction: str | None, mismatch_instruction: str | None
) -> str:
    """The facts for the system message, numbered, under the match instruction; or, when
    nothing matched, the mismatch instruction (by default: say you do not know)."""
    if records:
        facts = "\n".join(f"{i}. {r.strip()}" for i, r in enumerate(records, 1))
        return f"{match_instruction or DEFAULT_MATCH_INSTRUCTION}\n{facts}"
    return mismatch_instruction or DEFAULT_MISMATCH_INSTRUCTION


def build_messages(
    provider: LLMProvider,
    *,
    backstory: str | None,
    context: str | None,
    history: Sequence[Turn],
    max_new_tokens: int,
) -> list[ChatMessage]:
    """System message, then the newest history that fits what the context window leaves."""
    system = (backstory or DEFAULT_BACKSTORY).strip()
    if context:
        system = f"{system}\n\n{context}"
    budget = provider.context_window - max_new_tokens - provider.count_tokens(system) - 16
    kept: list[ChatMessage] = []
    for turn in reversed(history):
        cost = provider.count_tokens(turn.text) + 4
        if cost > budget and kept:
            break
        budget -= cost
        kept.append(ChatMessage(turn.role, turn.text))
    return [ChatMessage("system", system), *reversed(kept)]

"""Prompt assembly within a token budget: backstory and dataset context first (they ground the
answer), then as much recent history as fits, then the user's text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from openbotkit.models.providers import ChatMessage, LLMProvider, Role

DEFAULT_BACKSTORY = "You are a helpful assistant. Answer briefly and accurately."
DEFAULT_MATCH_INSTRUCTION = "Use these facts to answer:"


@dataclass(frozen=True)
class Turn:
    role: Role
    text: str


def context_block(
    records: Sequence[str], match_instruction: str | None, mismatch_instruction: str | None
) -> str | None:
    if records:
        facts = "\n".join(f"- {r.strip()}" for r in records)
        return f"{match_instruction or DEFAULT_MATCH_INSTRUCTION}\n{facts}"
    return mismatch_instruction or None


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

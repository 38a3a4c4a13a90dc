"""What one generation costs, and charging it however the generation ends.

A completion streams: its client may go away after a few tokens (the server then closes the
generator), the model may fail half-way, or the store may. `metered` reserves the prompt and
the longest answer from the acting key's budget before the model runs (usage.reserve) and
charges what was used when its block ends, whichever way it ends (usage.Hold).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from openbotkit.models.providers import ChatMessage, Finished, LLMProvider
from openbotkit.services import usage
from openbotkit.services.context import AccountScope

# Tokens a chat format adds around each message (role markers, separators), for a provider
# that counts texts only: an upper bound for the formats in use (ChatML adds 5).
CHAT_MARKUP_TOKENS = 8


@runtime_checkable
class ChatTokenizer(Protocol):
    """A provider that tokenizes a whole chat as its model reads it (the local models)."""

    def prompt_tokens(self, messages: list[ChatMessage]) -> list[int]: ...


def prompt_tokens(provider: LLMProvider, messages: list[ChatMessage]) -> int:
    """What a prompt costs: exact where the provider tokenizes the whole chat, otherwise its
    estimate for each message plus the chat format's markers (for a remote model, whose own
    count is what is charged in the end)."""
    if isinstance(provider, ChatTokenizer):
        return len(provider.prompt_tokens(messages))
    per_message = (provider.count_tokens(m.content) + CHAT_MARKUP_TOKENS for m in messages)
    return sum(per_message) + CHAT_MARKUP_TOKENS


@dataclass
class Meter:
    """One generation as it goes: the answer so far, how it ended (the model's Finished),
    and its hold on the key's budget."""

    provider: LLMProvider
    messages: list[ChatMessage]
    hold: usage.Hold
    answer: list[str] = field(default_factory=list)
    finished: list[Finished] = field(default_factory=list)

    @property
    def end(self) -> Finished:
        return self.finished[-1] if self.finished else Finished("stop", 0, 0)

    def used(self) -> int:
        """Tokens to charge: as the model reported them; for a stream that stopped early, the
        prompt and the answer so far; nothing when the model produced nothing (it failed
        before its first token, or never started)."""
        if self.finished:
            return self.end.input_tokens + self.end.output_tokens
        if not self.answer:
            return 0
        answer_tokens = self.provider.count_tokens("".join(self.answer))
        return prompt_tokens(self.provider, self.messages) + answer_tokens


@contextmanager
def metered(
    scope: AccountScope, provider: LLMProvider, messages: list[ChatMessage], max_tokens: int
) -> Iterator[Meter]:
    """Reserve the prompt and up to `max_tokens` of answer from the acting key's budget before
    the model runs (InsufficientCredit when not even the prompt fits; `hold.output_limit` is
    the answer's cap); however the block ends (the stream's end, a client gone and the
    generator closed, an error), what was used is charged exactly once and the rest of the
    reservation released. The caller may charge inside its own transaction first
    (`meter.hold.charging`)."""
    hold = usage.reserve(scope, lambda: prompt_tokens(provider, messages), max_tokens)
    meter = Meter(provider, messages, hold)
    try:
        yield meter
    finally:
        hold.settle(meter.used())

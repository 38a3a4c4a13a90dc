"""The provider seam: a language model that streams a chat completion."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, Protocol

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True)
class GenerationOptions:
    max_tokens: int = 256
    temperature: float = 0.2
    top_p: float | None = None
    seed: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None


@dataclass(frozen=True)
class Token:
    text: str


@dataclass(frozen=True)
class Finished:
    """The end of a completion: why it stopped and what it cost."""

    reason: Literal["stop", "length"]
    input_tokens: int
    output_tokens: int


Event = Token | Finished


class LLMProvider(Protocol):
    """Streams a completion. Closing the iterator stops generation (a client went away)."""

    model: str
    context_window: int

    def stream(
        self, messages: list[ChatMessage], options: GenerationOptions
    ) -> Iterator[Event]: ...

    def count_tokens(self, text: str) -> int: ...

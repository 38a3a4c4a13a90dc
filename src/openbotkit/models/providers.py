"""The provider seam: a language model that streams a chat completion."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True)
class ToolSpec:
    """A tool as a model sees it: a name, what it does, and a JSON Schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class ToolCall:
    """The model asks for a tool (streamed after its text, before Finished). `id` pairs the
    call with its result message; `arguments` is what the model wrote, parsed (a text that is
    not a JSON object arrives as {} with `malformed` set, so the failure can be fed back)."""

    id: str
    name: str
    arguments: dict[str, Any]
    malformed: str | None = None


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str
    # An assistant message that called tools, and a tool message's call (native tool loops).
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


@dataclass(frozen=True)
class GenerationOptions:
    max_tokens: int = 256
    temperature: float = 0.2
    top_p: float | None = None
    seed: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    # Tools the model may call (providers whose `tool_mode` is "native" offer them).
    tools: tuple[ToolSpec, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Token:
    text: str


@dataclass(frozen=True)
class Finished:
    """The end of a completion: why it stopped and what it cost."""

    reason: Literal["stop", "length"]
    input_tokens: int
    output_tokens: int


Event = Token | ToolCall | Finished

# How a provider runs tools: "native" (the model calls them in a loop, e.g. OpenAI's
# chat-completions `tools`), "choice" (it can only pick one action under a grammar: see
# `ToolChooser`), "none" (it cannot call tools at all).
ToolMode = Literal["native", "choice", "none"]


def tool_mode(provider: object) -> ToolMode:
    """A provider's way of running tools; a provider that does not say cannot run them."""
    mode = getattr(provider, "tool_mode", "none")
    if mode == "native":
        return "native"
    return "choice" if mode == "choice" else "none"


class LLMProvider(Protocol):
    """Streams a completion. Closing the iterator stops generation (a client went away)."""

    model: str
    context_window: int

    def stream(
        self, messages: list[ChatMessage], options: GenerationOptions
    ) -> Iterator[Event]: ...

    def count_tokens(self, text: str) -> int: ...


@runtime_checkable
class ToolChooser(Protocol):
    """A provider that chooses one action under a grammar (the local models): the JSON it
    writes is `{"tool": <a name or "none">, "arguments": {...}}`, streamed as Tokens then
    Finished like any generation, so it is metered the same way."""

    def choose(
        self, messages: list[ChatMessage], tools: list[ToolSpec], options: GenerationOptions
    ) -> Iterator[Event]: ...

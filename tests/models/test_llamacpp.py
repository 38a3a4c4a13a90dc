"""The bundled local model, for real (short outputs)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from openbotkit.errors import ProviderError
from openbotkit.models.llamacpp import (
    IDLE_THREADS,
    LlamaCppProvider,
    prompt_threads,
)
from openbotkit.models.providers import ChatMessage, Finished, GenerationOptions, LLMProvider, Token


def test_streams_tokens_then_usage(local_llm: LLMProvider) -> None:
    events = list(
        local_llm.stream(
            [ChatMessage("user", "Reply with the word hello.")],
            GenerationOptions(max_tokens=8, temperature=0),
        )
    )
    tokens = [e for e in events if isinstance(e, Token)]
    assert tokens and isinstance(events[-1], Finished)
    assert events[-1].output_tokens == len(tokens) <= 8
    assert events[-1].input_tokens > 0


def test_a_busy_machine_reads_the_prompt_on_one_thread(
    local_llm: LLMProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    cores = os.cpu_count() or 1
    monkeypatch.setattr(os, "getloadavg", lambda: (0.3, 0.3, 0.3))
    assert prompt_threads() == IDLE_THREADS == 2
    # The model's own two threads alone do not make the machine busy; one more per core does.
    monkeypatch.setattr(os, "getloadavg", lambda: (cores + 0.9, 1.0, 1.0))
    assert prompt_threads() == IDLE_THREADS
    monkeypatch.setattr(os, "getloadavg", lambda: (cores + 1.0, 1.0, 1.0))
    assert prompt_threads() == 1
    events = list(
        local_llm.stream(
            [ChatMessage("user", "Reply with the word hello.")],
            GenerationOptions(max_tokens=8, temperature=0),
        )
    )
    assert any(isinstance(e, Token) for e in events) and isinstance(events[-1], Finished)


def test_closing_the_stream_stops_generation(local_llm: LLMProvider) -> None:
    stream = local_llm.stream(
        [ChatMessage("user", "Count from 1 to 100.")], GenerationOptions(max_tokens=200)
    )
    first = next(stream)
    assert isinstance(first, Token)
    stream.close()  # as when a client disconnects
    # The model is free again at once: another completion runs to its end.
    after = list(
        local_llm.stream([ChatMessage("user", "Say ok.")], GenerationOptions(max_tokens=4))
    )
    assert isinstance(after[-1], Finished)


def test_usage_is_llamacpps_own_count(local_llm: LLMProvider) -> None:
    messages = [ChatMessage("system", "Be brief."), ChatMessage("user", "Name a colour.")]
    streamed = list(local_llm.stream(messages, GenerationOptions(max_tokens=6, temperature=0)))
    assert isinstance(local_llm, LlamaCppProvider)
    whole: Any = local_llm.llama.create_chat_completion(
        messages=[{"role": m.role, "content": m.content} for m in messages],
        max_tokens=6,
        temperature=0,
    )
    end = streamed[-1]
    assert isinstance(end, Finished)
    assert end.input_tokens == whole["usage"]["prompt_tokens"]
    assert end.output_tokens == whole["usage"]["completion_tokens"]
    assert (
        "".join(e.text for e in streamed if isinstance(e, Token))
        == (whole["choices"][0]["message"]["content"])
    )


def test_a_prompt_beyond_the_context_is_a_provider_error_saying_what_to_shorten(
    local_llm: LLMProvider,
) -> None:
    long = "The robot carries boxes. " * 500
    with pytest.raises(ProviderError, match="shorten the text"):
        next(local_llm.stream([ChatMessage("user", long)], GenerationOptions(max_tokens=4)))


def test_a_slow_reader_does_not_stall_other_completions(local_llm: LLMProvider) -> None:
    """A stream whose consumer stops reading after one token (a slow HTTP client) must not
    keep the model from answering someone else meanwhile."""
    import threading

    slow = local_llm.stream(
        [ChatMessage("user", "Count from 1 to 20.")], GenerationOptions(max_tokens=40)
    )
    assert isinstance(next(slow), Token)  # then the reader stalls, the stream held open
    other: list[Any] = []
    worker = threading.Thread(
        target=lambda: other.extend(
            local_llm.stream(
                [ChatMessage("user", "Say hi.")], GenerationOptions(max_tokens=4, temperature=0)
            )
        ),
        daemon=True,
    )
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive() and isinstance(other[-1], Finished)
    rest = list(slow)  # the slow reader still gets its whole answer afterwards
    assert isinstance(rest[-1], Finished)

"""The bundled local model, for real (short outputs)."""

from __future__ import annotations

from openbotkit.models.llamacpp import bundled_model_path
from openbotkit.models.providers import ChatMessage, Finished, GenerationOptions, LLMProvider, Token


def test_the_gguf_comes_from_the_installed_package() -> None:
    path = bundled_model_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50_000_000


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

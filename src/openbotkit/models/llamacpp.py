"""The local provider: llama.cpp running a GGUF on this machine's CPU, offline.

The bundled models (models/bundled.py) and any GGUF an operator names in the models file run
here, each with the chat template its GGUF carries. A model is loaded once per process; its
weights are memory-mapped, so processes that load the same file share one copy in the page
cache (only the context's KV cache and scratch buffers are per process).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from openbotkit.errors import ProviderError
from openbotkit.models.bundled import BundledModel, ModelCache
from openbotkit.models.providers import (
    ChatMessage,
    Event,
    Finished,
    GenerationOptions,
    Token,
    ToolMode,
    ToolSpec,
)

# Generation runs at a lower CPU priority (nice +10; Linux keeps it per thread, and llama.cpp's
# compute threads inherit it from the thread that starts them). A completion keeps a core busy
# for seconds: at equal priority, every API request on the machine waited behind it (p99 of
# plain reads in seconds under load); at lower priority it takes what they leave idle.
GENERATION_NICE = 10
# Threads on an otherwise idle machine, for reading the prompt (a batch of tokens, which splits
# well: SmolLM2 read 1,430 tokens in 5 s on two threads and 9 s on one) and for writing the
# answer. Writing one token is a product as large as the model: for the 1.5B default, two threads
# write about 1.7 times as fast as one; for SmolLM2 (135M) a second thread only waits at
# llama.cpp's barrier (0.7 s for 47 tokens either way, twice the CPU), so it writes on one.
# On a busy machine (see `busy`) every model uses one thread for both: a low-priority thread is
# often off its core and llama.cpp's threads meet at a barrier after every step, so two wait for
# each other (under bench/load.py, 50 clients on 2 cores, a SmolLM2 completion took 14 s with
# two prompt threads and 1.3-1.7 s with one).
IDLE_THREADS = 2
# The most a chosen action may take (its JSON: a name and a few short arguments).
CHOICE_MAX_TOKENS = 160


_log = logging.getLogger("openbotkit.llamacpp")
_quiet: list[Any] = []  # the installed log callback (ctypes needs it kept alive)


def _route_native_logs() -> None:
    """Send llama.cpp's own log lines to Python logging (debug) instead of stderr: its notes
    ("n_ctx_per_seq < n_ctx_train", ...) would otherwise land on every CLI call's stderr, where
    the connector promises one line per failure and nothing else."""
    if _quiet:
        return
    import ctypes

    import llama_cpp

    @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
    def callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        _log.debug("%s", text.decode("utf-8", errors="replace").rstrip())

    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
    _quiet.append(callback)


def busy() -> bool:
    """Whether the machine is busy: its load (runnable threads, averaged over the last minute)
    is at least one more than its cores. A model's own threads count in that load, so one user's
    completions, back to back, keep their threads."""
    try:
        return os.getloadavg()[0] >= (os.cpu_count() or 1) + 1
    except OSError:  # pragma: no cover - no load average on this OS
        return False


def prompt_threads() -> int:
    """Threads to read a prompt with: IDLE_THREADS, or one while the machine is busy."""
    return 1 if busy() else IDLE_THREADS


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

    A small local model cannot hold a tool loop (fed a result back, the 1.5B default calls the
    same tool again), so its tool mode is "choice": `choose` picks one action under a JSON
    grammar and the platform runs it (services/completion.py).
    """

    tool_mode: ToolMode = "choice"

    def __init__(
        self,
        model: str,
        path: Path,
        *,
        context_window: int,
        generation_threads: int = IDLE_THREADS,
    ) -> None:
        """`generation_threads`: threads that write the answer on an idle machine (one on a
        busy one); `context_window`: prompt plus answer, in tokens (the KV cache's size)."""
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        _route_native_logs()
        self.model = model
        self.path = path
        self.context_window = context_window
        self.generation_threads = generation_threads
        try:
            self.llama = Llama(
                model_path=str(path),
                n_ctx=context_window,
                n_threads=generation_threads,
                n_threads_batch=IDLE_THREADS,
                verbose=False,
            )
        except ValueError as exc:  # llama-cpp-python's word for "could not load"
            raise ProviderError(f"cannot load the GGUF {path} for model {model!r}: {exc}") from exc
        template = self.llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise ProviderError(
                f"the GGUF {path} (model {model!r}) has no chat template "
                "(tokenizer.chat_template): use an instruction-tuned GGUF that carries one"
            )
        eos = self.llama.token_eos()
        self.formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=self._token_text(eos),
            bos_token=self._token_text(self.llama.token_bos()),
            stop_token_ids=[eos],
        )
        self.lock = threading.Lock()

    @classmethod
    def bundled(cls, model: BundledModel, cache: ModelCache) -> LlamaCppProvider:
        """A bundled model, its GGUF assembled and checked first (models/bundled.py)."""
        return cls(
            model.name,
            cache.path(model),
            context_window=model.context_window,
            generation_threads=model.generation_threads,
        )

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
                threads = 1 if busy() else self.generation_threads
                self.llama._ctx.set_n_threads(threads, prompt_threads())
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

    def _fits(self, prompt: list[int], max_tokens: int) -> int:
        """The answer's room after the prompt (an error when there is none)."""
        room = self.context_window - len(prompt)
        if room < 1:
            raise ProviderError(
                f"the prompt needs {len(prompt)} tokens but the local model's context holds "
                f"{self.context_window}: shorten the text or the backstory, or lower the dataset's "
                "searchMaxTokens"
            )
        return min(max_tokens, room)

    def stream(self, messages: list[ChatMessage], options: GenerationOptions) -> Iterator[Event]:
        prompt = self.prompt_tokens(messages)
        params: dict[str, Any] = {
            # What fits after the prompt; hitting it ends the answer with reason "length".
            "max_tokens": self._fits(prompt, options.max_tokens),
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
        return self._run(prompt, params)

    def choose(
        self, messages: list[ChatMessage], tools: list[ToolSpec], options: GenerationOptions
    ) -> Iterator[Event]:
        """One action, as JSON the grammar allows only: `{"tool": <name>, "arguments": <that
        tool's arguments>}` or `{"tool": "none", "arguments": {}}`. Greedy (temperature 0): the
        same question picks the same action."""
        from llama_cpp.llama_grammar import LlamaGrammar

        prompt = self.prompt_tokens(messages)
        schema = choice_schema(tools)
        try:
            grammar = LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
        except (ValueError, RuntimeError):
            # A parameter schema llama.cpp's converter cannot express: the names still bind.
            grammar = LlamaGrammar.from_json_schema(
                json.dumps(choice_schema(tools, loose=True)), verbose=False
            )
        params: dict[str, Any] = {
            "max_tokens": self._fits(prompt, min(options.max_tokens, CHOICE_MAX_TOKENS)),
            "temperature": 0.0,
            "stop": [self.formatter.eos_token],
            "grammar": grammar,
        }
        return self._run(prompt, params)

    def _run(self, prompt: list[int], params: dict[str, Any]) -> Iterator[Event]:
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


def choice_schema(tools: list[ToolSpec], *, loose: bool = False) -> dict[str, Any]:
    """The JSON Schema of one chosen action: each tool with its own arguments' schema (or, when
    `loose`, any object), or "none"."""
    options: list[dict[str, Any]] = [
        {
            "type": "object",
            "properties": {
                "tool": {"const": t.name},
                "arguments": {"type": "object"} if loose else _closed(t.parameters),
            },
            "required": ["tool", "arguments"],
        }
        for t in tools
    ]
    options.append(
        {
            "type": "object",
            "properties": {"tool": {"const": "none"}, "arguments": {"type": "object"}},
            "required": ["tool", "arguments"],
        }
    )
    return {"anyOf": options}


def _closed(parameters: dict[str, Any]) -> dict[str, Any]:
    """A tool's parameters schema with no other properties (the grammar then writes only the
    ones the tool takes)."""
    schema: dict[str, Any] = (
        dict(parameters) if parameters else {"type": "object", "properties": {}}
    )
    schema.setdefault("type", "object")
    schema.setdefault("additionalProperties", False)
    return schema

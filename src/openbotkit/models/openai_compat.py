"""Any OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, llama.cpp's server), streamed."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any, Literal

import httpx

from openbotkit.errors import ProviderError
from openbotkit.models.providers import (
    ChatMessage,
    Event,
    Finished,
    GenerationOptions,
    Token,
)

log = logging.getLogger("openbotkit.models")


def _failed(model: str, what: str) -> str:
    # What a caller (a widget's visitor, say) sees: never the provider's URL or its answer's
    # body, which the server's log has.
    return f"the language model provider failed for model {model!r} ({what}); see the server log"


class OpenAICompatProvider:
    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        context_window: int = 8192,
        timeout: float = 120.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.context_window = context_window
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(headers=headers, timeout=timeout)

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 4)  # an estimate; the endpoint reports the real usage

    def stream(self, messages: list[ChatMessage], options: GenerationOptions) -> Iterator[Event]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": options.max_tokens,
            "temperature": options.temperature,
        }
        for key in ("top_p", "seed", "frequency_penalty", "presence_penalty"):
            if getattr(options, key) is not None:
                body[key] = getattr(options, key)
        url = f"{self.base_url}/chat/completions"
        reason: Literal["stop", "length"] = "stop"
        usage: dict[str, Any] | None = None
        pieces = 0
        try:
            with self.client.stream("POST", url, json=body) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    log.warning("%s: HTTP %s: %s", url, resp.status_code, resp.text[:300])
                    raise ProviderError(_failed(self.model, f"HTTP {resp.status_code}"))
                for line in resp.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    chunk = json.loads(data)
                    usage = chunk.get("usage") or usage
                    for choice in chunk.get("choices") or []:
                        text = (choice.get("delta") or {}).get("content")
                        if text:
                            pieces += 1
                            yield Token(text)
                        if choice.get("finish_reason") == "length":
                            reason = "length"
        except httpx.HTTPError as exc:
            log.warning("%s: %s", url, exc)
            raise ProviderError(_failed(self.model, type(exc).__name__)) from exc
        except json.JSONDecodeError as exc:
            log.warning("%s: a stream line is not JSON: %s", url, exc)
            raise ProviderError(_failed(self.model, "an unreadable answer")) from exc
        if usage:
            yield Finished(
                reason,
                int(usage.get("prompt_tokens", 0)),
                int(usage.get("completion_tokens", pieces)),
            )
        else:
            prompt = sum(self.count_tokens(m.content) for m in messages)
            yield Finished(reason, prompt, pieces)

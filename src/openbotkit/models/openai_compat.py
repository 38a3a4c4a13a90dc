"""Any OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, llama.cpp's server), streamed.

Tools are offered natively (chat-completions `tools`; the streamed `tool_calls` deltas are
joined and yielded as ToolCall events before Finished) unless the routing entry says
`"tools": false` (an endpoint whose model cannot call tools)."""

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
    ToolCall,
    ToolMode,
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
        *,
        tools: bool = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.tool_mode: ToolMode = "native" if tools else "none"
        self.model = model
        self.context_window = context_window
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(headers=headers, timeout=timeout)

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 4)  # an estimate; the endpoint reports the real usage

    def stream(self, messages: list[ChatMessage], options: GenerationOptions) -> Iterator[Event]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [_wire(m) for m in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": options.max_tokens,
            "temperature": options.temperature,
        }
        for key in ("top_p", "seed", "frequency_penalty", "presence_penalty"):
            if getattr(options, key) is not None:
                body[key] = getattr(options, key)
        if options.tools and self.tool_mode == "native":
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.parameters,
                    },
                }
                for t in options.tools
            ]
        calls: dict[int, dict[str, str]] = {}
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
                        delta = choice.get("delta") or {}
                        text = delta.get("content")
                        if text:
                            pieces += 1
                            yield Token(text)
                        for part in delta.get("tool_calls") or []:
                            _join_call(calls, part)
                        if choice.get("finish_reason") == "length":
                            reason = "length"
        except httpx.HTTPError as exc:
            log.warning("%s: %s", url, exc)
            raise ProviderError(_failed(self.model, type(exc).__name__)) from exc
        except json.JSONDecodeError as exc:
            log.warning("%s: a stream line is not JSON: %s", url, exc)
            raise ProviderError(_failed(self.model, "an unreadable answer")) from exc
        for index in sorted(calls):
            yield _call(calls[index], index)
        if usage:
            yield Finished(
                reason,
                int(usage.get("prompt_tokens", 0)),
                int(usage.get("completion_tokens", pieces)),
            )
        else:
            prompt = sum(self.count_tokens(m.content) for m in messages)
            yield Finished(reason, prompt, pieces)


def _wire(message: ChatMessage) -> dict[str, Any]:
    """A message in the chat-completions shape, with its tool calls or the call it answers."""
    wire: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        wire["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
            }
            for c in message.tool_calls
        ]
    if message.tool_call_id is not None:
        wire["tool_call_id"] = message.tool_call_id
    return wire


def _join_call(calls: dict[int, dict[str, str]], part: dict[str, Any]) -> None:
    """Add one streamed `tool_calls` delta: the first piece of a call carries its id and name,
    the arguments arrive in pieces of text."""
    index = int(part.get("index", len(calls)))
    call = calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
    function = part.get("function") or {}
    call["id"] = part.get("id") or call["id"]
    call["name"] += function.get("name") or ""
    call["arguments"] += function.get("arguments") or ""


def _call(call: dict[str, str], index: int) -> ToolCall:
    """A joined call; arguments that are not a JSON object are reported, not raised."""
    text = call["arguments"].strip() or "{}"
    call_id = call["id"] or f"call_{index}"
    try:
        arguments = json.loads(text)
    except json.JSONDecodeError as exc:
        return ToolCall(call_id, call["name"], {}, f"the arguments are not JSON ({exc.msg})")
    if not isinstance(arguments, dict):
        return ToolCall(call_id, call["name"], {}, "the arguments are not a JSON object")
    return ToolCall(call_id, call["name"], arguments)

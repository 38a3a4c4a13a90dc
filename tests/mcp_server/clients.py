"""The official Python MCP client on both transports, and the checks every MCP test shares."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import mcp_types as types
import pytest
from jsonschema.validators import validator_for
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from openbotkit.actions import REGISTRY, Effect

OBK = shutil.which("obk", path=str(Path(sys.executable).parent)) or "obk"
COMPLETION_MODEL = "smollm2/maxTokens=12/temperature=0"
# A bare `initialize` request, for tests that speak JSON-RPC over HTTP without a client.
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "probe", "version": "1"},
    },
}


def stdio_client(home: Path, *args: str, env: dict[str, str] | None = None) -> Client:
    """`obk mcp ARGS` as a subprocess on `home`, as an MCP client's config would start it."""
    env = {**os.environ, "OBK_HOME": str(home), "HF_HUB_OFFLINE": "1", **(env or {})}
    return Client(StdioServerParameters(command=OBK, args=["mcp", *args], env=env))


@asynccontextmanager
async def http_client(origin: str, token: str) -> AsyncIterator[Client]:
    """Streamable HTTP to `obk serve`'s /mcp with a secret, as a remote MCP client connects."""
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=300) as http,
        Client(streamable_http_client(origin + "/mcp", http_client=http)) as client,
    ):
        yield client


def ok(result: types.CallToolResult) -> dict[str, Any]:
    """A successful call's structured result; its text block is the same JSON."""
    assert not result.is_error, result.content
    data = result.structured_content
    assert isinstance(data, dict)
    text = result.content[0]
    assert isinstance(text, types.TextContent)
    assert json.loads(text.text) == data
    return data


def error(result: types.CallToolResult, code: str) -> dict[str, Any]:
    """A failed call: `isError` with text only (no `structuredContent`, which clients check
    against the tool's output schema), `code: message`, then the connector's error object."""
    assert result.is_error, result.structured_content
    assert result.structured_content is None
    summary, detail = result.content
    assert isinstance(summary, types.TextContent) and isinstance(detail, types.TextContent)
    assert summary.text.startswith(f"{code}: "), summary.text
    err = json.loads(detail.text)["error"]
    assert isinstance(err, dict)
    assert err["code"] == code
    assert summary.text == f"{code}: {err['message']}"
    assert set(err) == {"code", "message", "status", "details"}
    return err


async def not_offered(client: Client, name: str, arguments: dict[str, Any]) -> MCPError:
    """A call of a tool the server does not offer: the JSON-RPC error -32602, no tool result."""
    with pytest.raises(MCPError) as caught:
        await client.call_tool(name, arguments)
    assert caught.value.code == types.INVALID_PARAMS, caught.value
    return caught.value


def check_tools(tools: list[types.Tool], *, local: bool) -> None:
    """Every registered action is a tool, with its schemas (valid JSON Schema) and hints."""
    by_name = {t.name: t for t in tools}
    assert list(by_name) == [a.name for a in REGISTRY]
    for act in REGISTRY:
        tool = by_name[act.name]
        assert tool.description == act.description
        for schema in (tool.input_schema, tool.output_schema):
            assert schema is not None and schema["type"] == "object"
            validator_for(schema).check_schema(schema)
        assert tool.output_schema == act.output_schema()
        expected = act.input_schema()
        if not local:
            for field in act.local_fields:
                del expected["properties"][field]
        assert tool.input_schema == expected
        hints = tool.annotations
        assert hints is not None
        effect = act.effect
        assert hints.read_only_hint is (effect is Effect.READ)
        assert hints.destructive_hint is (effect is Effect.DESTRUCTIVE)
        # The registry's declaration (tests/actions/test_registry.py checks which are).
        assert hints.idempotent_hint is act.idempotent
        assert hints.open_world_hint is act.open_world
    for reaches_out in ("upload_file", "complete_conversation"):
        hints = by_name[reaches_out].annotations
        assert hints is not None and hints.open_world_hint is True
    assert ("path" in by_name["upload_file"].input_schema["properties"]) is local
    assert ("path" in by_name["download_file"].input_schema["properties"]) is local


async def check_flow(client: Client) -> None:
    """What an agent does: a dataset with records, searched, a bot on it, a conversation
    completed (with progress), then updates and deletes, every result checked."""
    dataset = ok(await client.call_tool("create_dataset", {"name": "Shop facts"}))["id"]
    facts = [
        "The shop opens at 9am on weekdays and 10am on Saturdays.",
        "Returns are accepted within 30 days with a receipt.",
        "The shop is closed on Sundays and public holidays.",
    ]
    records = [
        ok(await client.call_tool("create_dataset_record", {"datasetId": dataset, "text": t}))["id"]
        for t in facts
    ]
    found = ok(
        await client.call_tool(
            "search_dataset", {"datasetId": dataset, "search": "return policy receipt"}
        )
    )
    assert found["id"] == dataset
    assert found["records"][0]["id"] == records[1]
    assert found["records"][0]["text"] == facts[1]
    assert 0 < found["records"][0]["score"] <= 1

    bot = ok(
        await client.call_tool(
            "create_bot",
            {"name": "Shop helper", "datasetId": dataset, "model": COMPLETION_MODEL},
        )
    )["id"]
    assert ok(await client.call_tool("fetch_bot", {"botId": bot}))["datasetId"] == dataset
    conversation = ok(await client.call_tool("create_conversation", {"botId": bot}))["id"]

    progress: list[tuple[float, str | None]] = []

    async def on_progress(done: float, _total: float | None, message: str | None) -> None:
        progress.append((done, message))

    answer = ok(
        await client.call_tool(
            "complete_conversation",
            {"conversationId": conversation, "text": "When can I return things?"},
            progress_callback=on_progress,
        )
    )
    assert answer["text"] and answer["usage"]["token"] > 0
    assert answer["end"]["reason"] in ("stop", "length")
    assert progress, "a progress token gets the tokens as they come"
    assert [p[0] for p in progress] == list(range(1, len(progress) + 1))
    assert (progress[-1][1] or "").strip() == answer["text"]
    messages = ok(
        await client.call_tool("list_conversation_messages", {"conversationId": conversation})
    )
    assert [m["type"] for m in messages["items"]] == ["user", "bot"]
    assert messages["items"][1]["id"] == answer["id"]
    assert messages["items"][1]["text"] == answer["text"]

    # Without a progress token the same tool answers plainly, with the same shape.
    again = ok(await client.call_tool("complete_conversation", {"conversationId": conversation}))
    assert set(again) == set(answer)

    updated = ok(await client.call_tool("update_bot", {"botId": bot, "name": "Returns desk"}))
    assert updated == {"id": bot}
    assert ok(await client.call_tool("fetch_bot", {"botId": bot}))["name"] == "Returns desk"
    ok(await client.call_tool("update_dataset_record", {
        "datasetId": dataset, "recordId": records[2], "text": "Open every day.",
    }))  # fmt: skip
    record = ok(
        await client.call_tool(
            "fetch_dataset_record", {"datasetId": dataset, "recordId": records[2]}
        )
    )
    assert record["text"] == "Open every day."

    assert ok(await client.call_tool("delete_conversation", {"conversationId": conversation})) == {
        "id": conversation
    }
    error(
        await client.call_tool("fetch_conversation", {"conversationId": conversation}), "not_found"
    )
    assert ok(await client.call_tool("delete_bot", {"botId": bot})) == {"id": bot}
    assert ok(await client.call_tool("delete_dataset", {"datasetId": dataset})) == {"id": dataset}
    error(await client.call_tool("fetch_dataset", {"datasetId": dataset}), "not_found")


async def check_errors(client: Client) -> None:
    """Unknown ids and bad arguments are tool results naming the problem, never crashes."""
    err = error(await client.call_tool("fetch_bot", {"botId": "no-such-bot"}), "not_found")
    assert err["status"] == 404
    err = error(await client.call_tool("create_bot", {"name": 42}), "invalid_input")
    assert err["details"][0]["pointer"] == "/name"
    err = error(await client.call_tool("create_dataset", {"nmae": "typo"}), "invalid_input")
    assert err["details"][0]["pointer"] == "/nmae"
    assert err["details"][0]["rule"] == "extra_forbidden"
    err = error(await client.call_tool("fetch_bot", {}), "invalid_input")
    assert err["details"][0] == {
        "pointer": "/botId",
        "rule": "missing",
        "message": "Field required",
    }
    refused = await not_offered(client, "no_such_tool", {})
    assert "no_such_tool" in refused.message

"""The MCP server: the official SDK's low-level `Server`, its tools derived from the registry.

Transport-agnostic: `obk mcp` runs it on stdio with the connector's backend, `obk serve` mounts
it over Streamable HTTP with the requesting secret's account. Each surface says how to run an
action for a request (`RunnerFor`); this module turns tool calls into action runs and action
results and errors into tool results:

- success: `structuredContent` is the action's output (the connector's `data`), plus a text
  block with the same JSON;
- failure: `isError`, text `code: message`, `structuredContent` the connector's `error` object.

The low-level SDK does not check arguments against the schema: `Action.parse_input` does, so a
bad argument is `invalid_input` naming the field, never an internal error.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
from collections.abc import Awaitable, Callable, Generator, Iterator
from typing import Any, Protocol

import anyio
import anyio.to_thread
import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.shared.jsonrpc_dispatcher import progress_token_from_params
from pydantic import BaseModel

from openbotkit.actions import REGISTRY, Action, Registry
from openbotkit.errors import InternalError, ObkError, error_class_for
from openbotkit.mcp_server.tools import ToolSelection, tool_for

log = logging.getLogger("openbotkit.mcp")

Event = dict[str, Any]
Context = ServerRequestContext[Any, Any]

INSTRUCTIONS = (
    "openbotkit: a ChatBotKit-compatible platform. Tools manage bots, datasets (records, files,"
    " search), files and conversations, and complete conversations with the bot's model,"
    " grounded in its dataset. Ids may be given as @alias where a field says so. Every tool"
    " returns its result as structured JSON; an error's text starts with its code"
    " (not_found, invalid_input, ...)."
)


class ActionRunner(Protocol):
    """Runs validated actions as one account: the embedded engine or a remote server."""

    def run(self, act: Action, inp: BaseModel) -> dict[str, Any]: ...

    def stream(self, act: Action, inp: BaseModel) -> Iterator[Event]: ...


RunnerFor = Callable[[Context], Awaitable[ActionRunner]]
"""The runner for one tool call: it authenticates the request where the transport has one."""


def _version() -> str:
    try:
        return importlib.metadata.version("openbotkit")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - running from a tree
        return "0"


def success(data: dict[str, Any]) -> types.CallToolResult:
    text = json.dumps(data, ensure_ascii=False)
    return types.CallToolResult(content=[types.TextContent(text=text)], structured_content=data)


def failure(err: ObkError) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(text=f"{err.code}: {err.message}")],
        structured_content=err.to_json(),
        is_error=True,
    )


async def _close(events: Iterator[Event]) -> None:
    # Closing runs the generator's cleanup (a rollback, the model's stream) on a worker
    # thread, shielded so that a cancelled call still stops the generation now.
    if isinstance(events, Generator):
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(events.close)


async def run_with_progress(
    runner: ActionRunner, act: Action, inp: BaseModel, ctx: Context
) -> dict[str, Any]:
    """Run a streaming action, reporting each token as progress (count so far, and the text so
    far as the message); return its final result, the same JSON a plain run returns."""
    events = runner.stream(act, inp)
    tokens: list[str] = []
    result: dict[str, Any] | None = None
    try:
        while (event := await anyio.to_thread.run_sync(next, events, None)) is not None:
            kind, data = event.get("type"), event.get("data") or {}
            if kind == "token":
                tokens.append(str(data.get("token", "")))
                await ctx.session.report_progress(len(tokens), None, "".join(tokens))
            elif kind == "result":
                result = data
            elif kind == "error":
                cls = error_class_for(code=data.get("code"))
                raise cls(str(data.get("message") or "the stream failed"))
    finally:
        await _close(events)
    if result is None:
        raise InternalError(f"{act.name} ended without a result")
    return act.dump_output(act.output.model_validate(result))


def build_server(
    runner_for: RunnerFor,
    *,
    local: bool,
    selection: ToolSelection | None = None,
    registry: Registry = REGISTRY,
) -> Server[Any]:
    """An MCP server offering the selected actions as tools.

    `local` says the caller is on this machine (stdio): only then are fields naming local files
    (`path`) in the schemas and accepted.
    """
    selection = selection or ToolSelection()
    tools = [tool_for(act, local=local) for act in selection.actions(registry)]
    schemas = {tool.name: tool.input_schema for tool in tools}

    async def list_tools(
        _ctx: Context, _params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def call_tool(ctx: Context, params: types.CallToolRequestParams) -> types.CallToolResult:
        try:
            act = selection.check(registry, params.name)
            runner = await runner_for(ctx)
            data = params.arguments or {}
            # Local-only fields given over HTTP are refused by the server's engine.
            inp = act.parse_input(data)
            if "stream" in act.extensions and progress_token_from_params(ctx.params) is not None:
                return success(await run_with_progress(runner, act, inp, ctx))
            return success(await anyio.to_thread.run_sync(runner.run, act, inp))
        except ObkError as err:
            return failure(err)
        except Exception:  # the one place a bug becomes internal_error
            log.exception("tool %s failed", params.name)
            return failure(InternalError(f"{params.name} failed: internal error (see the log)"))

    return Server(
        "openbotkit",
        version=_version(),
        title="openbotkit",
        instructions=INSTRUCTIONS,
        get_tool_input_schema=schemas.get,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )

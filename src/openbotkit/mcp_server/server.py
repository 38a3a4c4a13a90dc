"""The MCP server: the official SDK's low-level `Server`, its tools derived from the registry.

Transport-agnostic: `obk mcp` runs it on stdio with the connector's backend, `obk serve` mounts
it over Streamable HTTP with the requesting secret's account. Each surface says how to run an
action for a request (`RunnerFor`); this module turns tool calls into action runs and action
results and errors into tool results:

- success: `structuredContent` is the action's output (the connector's `data`), plus a text
  block with the same JSON;
- failure: `isError` with text only, `code: message` and then the connector's `error` object as
  JSON. Never in `structuredContent`: clients check that against the tool's output schema (the
  TypeScript SDK throws -32602 when it does not match), and an error is no output;
- a tool this server does not offer (unknown, or left out by the selection) is not a tool
  result but the JSON-RPC error -32602, as the specification says of unknown tools.

The low-level SDK does not check arguments against the schema: `Action.parse_input` does, so a
bad argument is `invalid_input` naming the field, never an internal error.

A `notifications/cancelled` stops the call it names. On stdio the SDK does that itself; on
stateless Streamable HTTP the notification comes in a request of its own, so the surface passes
a `CallsInFlight` that finds the call (see there). Actions that stream (completions) run as
streams either way, so a cancelled call stops generating at once.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

import anyio
import anyio.to_thread
import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError
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

# The JSON-RPC code the SDK answers a cancelled request with on the 2025 wire (LSP's).
REQUEST_CANCELLED = -32800


class CallsInFlight:
    """The tool calls running in this process, by caller and request id, for a transport whose
    `notifications/cancelled` arrives apart from the call it names (stateless Streamable HTTP).

    Request ids are chosen by clients, so a call is found by its id *and* its caller (the
    secret that made both requests): no one cancels another secret's call. Two running calls
    of one caller with one id (two clients sharing a secret) are ambiguous: neither is
    cancelled. A cancel that reaches another process of `obk serve --workers N` than its call
    finds nothing here; the client stops waiting all the same.
    """

    def __init__(self, caller_of: Callable[[Context], Awaitable[str]]) -> None:
        self.caller_of = caller_of
        self._scopes: dict[tuple[str, types.RequestId], list[anyio.CancelScope]] = {}

    @asynccontextmanager
    async def track(self, ctx: Context) -> AsyncIterator[anyio.CancelScope]:
        """Run the body as a call that a cancel naming it stops."""
        key = (await self.caller_of(ctx), ctx.request_id if ctx.request_id is not None else "")
        with anyio.CancelScope() as scope:
            self._scopes.setdefault(key, []).append(scope)
            try:
                yield scope
            finally:
                scopes = self._scopes[key]
                scopes.remove(scope)
                if not scopes:
                    del self._scopes[key]

    async def cancel(self, ctx: Context, params: types.CancelledNotificationParams) -> None:
        """The handler of `notifications/cancelled`."""
        if params.request_id is None:
            return
        try:
            caller = await self.caller_of(ctx)
        except ObkError:
            return  # not authenticated: nothing of anyone's to cancel
        scopes = self._scopes.get((caller, params.request_id), [])
        if len(scopes) == 1:
            log.info("call %r of key %s cancelled by the client", params.request_id, caller)
            scopes[0].cancel()


def _version() -> str:
    try:
        return importlib.metadata.version("openbotkit")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - running from a tree
        return "0"


def success(data: dict[str, Any]) -> types.CallToolResult:
    text = json.dumps(data, ensure_ascii=False)
    return types.CallToolResult(content=[types.TextContent(text=text)], structured_content=data)


def failure(err: ObkError) -> types.CallToolResult:
    """`code: message` for people and models, then the error object for programs."""
    return types.CallToolResult(
        content=[
            types.TextContent(text=f"{err.code}: {err.message}"),
            types.TextContent(text=json.dumps({"error": err.to_json()}, ensure_ascii=False)),
        ],
        is_error=True,
    )


async def _close(events: Iterator[Event]) -> None:
    # Closing runs the generator's cleanup (a rollback, the model's stream) on a worker
    # thread, shielded so that a cancelled call still stops the generation now.
    if isinstance(events, Generator):
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(events.close)


async def run_streamed(
    runner: ActionRunner, act: Action, inp: BaseModel, ctx: Context, *, progress: bool
) -> dict[str, Any]:
    """Run a streaming action, with `progress` reporting each token (count so far, and the text
    so far as the message); return its final result, the same JSON a plain run returns. A
    cancelled call closes the stream, which stops the generation."""
    events = runner.stream(act, inp)
    tokens: list[str] = []
    result: dict[str, Any] | None = None
    try:
        while (event := await anyio.to_thread.run_sync(next, events, None)) is not None:
            kind, data = event.get("type"), event.get("data") or {}
            if kind == "token":
                tokens.append(str(data.get("token", "")))
                if progress:
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


async def _run(runner: ActionRunner, act: Action, inp: BaseModel, ctx: Context) -> dict[str, Any]:
    if "stream" in act.extensions:
        progress = progress_token_from_params(ctx.params) is not None
        return await run_streamed(runner, act, inp, ctx, progress=progress)
    return await anyio.to_thread.run_sync(runner.run, act, inp)


@asynccontextmanager
async def _untracked(_ctx: Context) -> AsyncIterator[anyio.CancelScope]:
    with anyio.CancelScope() as scope:
        yield scope


def build_server(
    runner_for: RunnerFor,
    *,
    local: bool,
    selection: ToolSelection | None = None,
    registry: Registry = REGISTRY,
    calls: CallsInFlight | None = None,
) -> Server[Any]:
    """An MCP server offering the selected actions as tools.

    `local` says the caller is on this machine (stdio): only then are fields naming local files
    (`path`) in the schemas and accepted. `calls`: where cancels find their calls, for a
    transport that delivers them apart from the calls.
    """
    selection = selection or ToolSelection()
    tools = [tool_for(act, local=local) for act in selection.actions(registry)]
    schemas = {tool.name: tool.input_schema for tool in tools}
    track = calls.track if calls is not None else _untracked

    async def list_tools(
        _ctx: Context, _params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    def offered(name: str) -> Action:
        try:
            return selection.check(registry, name)
        except ObkError as err:  # unknown, or not offered here: no tool of this server
            raise MCPError(types.INVALID_PARAMS, err.message, {"code": err.code}) from None

    async def call_tool(ctx: Context, params: types.CallToolRequestParams) -> types.CallToolResult:
        act = offered(params.name)
        result: dict[str, Any] | None = None
        try:
            runner = await runner_for(ctx)
            # Local-only fields given over HTTP are refused by the server's engine.
            inp = act.parse_input(params.arguments or {})
            async with track(ctx):
                result = await _run(runner, act, inp, ctx)
        except ObkError as err:
            return failure(err)
        except Exception:  # the one place a bug becomes internal_error
            log.exception("tool %s failed", params.name)
            return failure(InternalError(f"{params.name} failed: internal error (see the log)"))
        if result is None:  # stopped by a notifications/cancelled
            raise MCPError(REQUEST_CANCELLED, "Request cancelled")
        return success(result)

    server: Server[Any] = Server(
        "openbotkit",
        version=_version(),
        title="openbotkit",
        instructions=INSTRUCTIONS,
        get_tool_input_schema=schemas.get,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )
    if calls is not None:
        server.add_notification_handler(
            "notifications/cancelled", types.CancelledNotificationParams, calls.cancel
        )
    return server

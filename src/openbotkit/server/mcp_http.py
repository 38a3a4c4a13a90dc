"""MCP over Streamable HTTP at `/mcp` inside `obk serve`, authenticated like the REST routes.

Every request to `/mcp` passes the same `authenticate` as `/api/v1` (none or a revoked secret:
401 with `WWW-Authenticate: Bearer`), and every tool call authenticates its own request again
and runs as that secret's account, so a secret sees only its own account's data. The session
manager is stateless (no per-process session state), so any of `obk serve --workers N`'s
processes answers any request; progress still streams on the call's own response (SSE).
Fields naming files on the server's machine (`path`) are not offered and are refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from pydantic import BaseModel
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from openbotkit.access import Key
from openbotkit.actions import REGISTRY, Action, Registry
from openbotkit.engine import Engine
from openbotkit.errors import ObkError
from openbotkit.mcp_server import ActionRunner, build_server
from openbotkit.mcp_server.server import Context
from openbotkit.server.errors import error_response
from openbotkit.server.routes import authenticate
from openbotkit.server.wire_files import absolute_urls

PATH = "/mcp"


class EngineRunner:
    """Runs actions on the server's engine as one key (its account, scopes and budget), for one
    HTTP request: the engine checks the key before each action, as for the REST routes."""

    def __init__(self, engine: Engine, key: Key, request: Request) -> None:
        self.engine = engine
        self.key = key
        self.request = request

    def run(self, act: Action, inp: BaseModel) -> dict[str, Any]:
        out = self.engine.run(act, inp, account_id=self.key)
        return absolute_urls(self.request, act.dump_output(out))

    def stream(self, act: Action, inp: BaseModel) -> Iterator[dict[str, Any]]:
        return self.engine.stream(act, inp, account_id=self.key)


class McpEndpoint:
    """The ASGI app at `/mcp`: refuse unauthenticated requests, hand the rest to the SDK."""

    def __init__(self, engine: Engine, manager: StreamableHTTPSessionManager) -> None:
        self.engine = engine
        self.manager = manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await authenticate(Request(scope, receive), self.engine)
        except ObkError as err:
            response = error_response(err)
            if err.status == 401:
                response.headers["WWW-Authenticate"] = "Bearer"
            await response(scope, receive, send)
            return
        await self.manager.handle_request(scope, receive, send)


def mcp_endpoint(engine: Engine, registry: Registry = REGISTRY) -> McpEndpoint:
    """The endpoint for `engine`; run `endpoint.manager.run()` for the app's lifetime."""

    async def runner_for(ctx: Context) -> ActionRunner:
        request = ctx.request
        assert isinstance(request, Request), "a Streamable HTTP call carries its request"
        return EngineRunner(engine, await authenticate(request, engine), request)

    server = build_server(runner_for, local=False, registry=registry)
    manager = StreamableHTTPSessionManager(app=server, stateless=True)
    return McpEndpoint(engine, manager)

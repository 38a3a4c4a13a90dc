"""MCP over Streamable HTTP at `/mcp` inside `obk serve`, authenticated like the REST routes.

Every request to `/mcp` passes the same `authenticate` as `/api/v1` (none or a revoked secret:
401 with `WWW-Authenticate: Bearer`), and every tool call authenticates its own request again
and runs as that secret's account, so a secret sees only its own account's data. The session
manager is stateless (no per-process session state), so any of `obk serve --workers N`'s
processes answers any request; progress still streams on the call's own response (SSE).
Fields naming files on the server's machine (`path`) are not offered and are refused.

Browsers: the specification asks servers to check `Origin` (DNS rebinding: a page on
`evil.example` whose name is made to point at the server). A request with no `Origin` comes from
no browser and passes; a browser's is let in only from an origin in OBK_CORS_ORIGINS (any with
`*`) or from the server's own origin, which is its `Host`, and only while that `Host` is one a
rebound name cannot pose as: a loopback name or an IP address. Anything else is 403 before the
secret is looked at. A page on a named host that calls `/mcp` lists its origin in
OBK_CORS_ORIGINS.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from pydantic import BaseModel
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from openbotkit.access import Key
from openbotkit.actions import REGISTRY, Action, Registry
from openbotkit.engine import Engine
from openbotkit.errors import NotAuthorized, ObkError
from openbotkit.mcp_server import ActionRunner, CallsInFlight, build_server
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


DEFAULT_PORTS = {"http": 80, "https": 443}


def _cannot_be_rebound(hostname: str) -> bool:
    """A loopback name (browsers resolve `localhost` and `*.localhost` themselves) or an IP
    address: a page can reach the server under such a name only by being served from it."""
    if hostname == "localhost" or hostname.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(hostname)
    except ValueError:
        return False
    return True


def origin_allowed(origin: str | None, host: str | None, allowed: Sequence[str]) -> bool:
    """Whether a request with this `Origin` and `Host` may reach `/mcp` (see the module)."""
    if origin is None:
        return True
    if "*" in allowed or origin.rstrip("/") in allowed:
        return True
    if not host:
        return False
    try:
        seen, served = urlsplit(origin), urlsplit(f"//{host}")
        default = DEFAULT_PORTS.get(seen.scheme)
        same = (
            seen.hostname is not None
            and seen.hostname == served.hostname
            and (seen.port or default) == (served.port or default)
        )
    except ValueError:  # a port that is no number
        return False
    return same and seen.hostname is not None and _cannot_be_rebound(seen.hostname)


class McpEndpoint:
    """The ASGI app at `/mcp`: refuse foreign browser origins and unauthenticated requests,
    hand the rest to the SDK."""

    def __init__(
        self, engine: Engine, manager: StreamableHTTPSessionManager, origins: Sequence[str]
    ) -> None:
        self.engine = engine
        self.manager = manager
        self.origins = origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        origin = request.headers.get("origin")
        if not origin_allowed(origin, request.headers.get("host"), self.origins):
            refused = NotAuthorized(
                f"Origin {origin!r} may not call /mcp: only the server's own origin (on a"
                " loopback name or an IP address) and those in OBK_CORS_ORIGINS may"
            )
            await error_response(refused)(scope, receive, send)
            return
        try:
            await authenticate(request, self.engine)
        except ObkError as err:
            response = error_response(err)
            if err.status == 401:
                response.headers["WWW-Authenticate"] = "Bearer"
            await response(scope, receive, send)
            return
        await self.manager.handle_request(scope, receive, send)


def mcp_endpoint(engine: Engine, registry: Registry = REGISTRY) -> McpEndpoint:
    """The endpoint for `engine`; run `endpoint.manager.run()` for the app's lifetime."""

    def request_of(ctx: Context) -> Request:
        request = ctx.request
        assert isinstance(request, Request), "a Streamable HTTP call carries its request"
        return request

    async def runner_for(ctx: Context) -> ActionRunner:
        request = request_of(ctx)
        return EngineRunner(engine, await authenticate(request, engine), request)

    async def caller_of(ctx: Context) -> str:
        return (await authenticate(request_of(ctx), engine)).id

    calls = CallsInFlight(caller_of)
    server = build_server(runner_for, local=False, registry=registry, calls=calls)
    manager = StreamableHTTPSessionManager(app=server, stateless=True)
    return McpEndpoint(engine, manager, engine.settings.cors_origin_list)

"""The web console at `/` and the chat widget at `/widget.js`: static files shipped in the
package (openbotkit/console), and the CORS that lets the widget talk from other origins.

The console is a page like any other client: it calls the same `/api/v1` routes as the SDKs, so
nothing here knows about bots or datasets. The routes the widget uses (start a conversation with
a bot, open its session, complete it, read the answer's sources) allow every origin;
OBK_CORS_ORIGINS lists the origins that may call every other API route (server/app.py).

Two routes belong to the console alone: `POST /console/signin` trades a one-time sign-in link
(`obk serve --open`) for a console session, and `POST /console/signout` revokes the session
(services/consoles.py). Neither is an action: no SDK, CLI or MCP client has a console session.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openbotkit.errors import InvalidInput, NotAuthenticated, Problem
from openbotkit.server.negotiation import bearer_token, json_body
from openbotkit.services import consoles

if TYPE_CHECKING:
    from openbotkit.engine import Engine

WIDGET_PATHS = re.compile(
    r"^/(?:api/)?v1/conversation/"
    r"(?:create|[^/]+/session/create|[^/]+/complete|[^/]+/message/[^/]+/fetch)$"
    r"|^/widget\.js$"
)
ALLOW_HEADERS = "authorization, content-type, accept"
ALLOW_METHODS = "GET, POST, OPTIONS"


def console_routes(engine: Engine) -> list[BaseRoute]:
    """`/` is the console's page, `/console/...` its modules and styles, `/widget.js` the
    widget, `/console/signin` and `/console/signout` its sessions; API paths are left alone
    (an unknown one stays a JSON 404)."""
    static = StaticFiles(packages=[("openbotkit", "console")])
    runtime = engine.runtime

    async def signin(request: Request) -> Response:
        link = (await json_body(request)).get("link")
        link_id, dot, token = link.partition(".") if isinstance(link, str) else ("", "", "")
        if not dot or not link_id or not token:
            raise InvalidInput(
                "link must be the ID.TOKEN of a sign-in link (#signin=ID.TOKEN)",
                details=[Problem("/link", "format", "ID.TOKEN")],
            )
        made = await run_in_threadpool(consoles.redeem, runtime, link_id, token)
        body = {"id": made.id, "token": made.token, "expiresAt": made.expires_at}
        return Response(orjson.dumps(body), media_type="application/json")

    async def signout(request: Request) -> Response:
        try:
            token = bearer_token(request)
        except NotAuthenticated:
            token = ""
        revoked = bool(token) and await run_in_threadpool(consoles.sign_out, runtime, token)
        return Response(orjson.dumps({"revoked": revoked}), media_type="application/json")

    async def file(request: Request, name: str) -> Response:
        return await static.get_response(name, request.scope)

    async def index(request: Request) -> Response:
        return await file(request, "index.html")

    async def widget(request: Request) -> Response:
        return await file(request, "widget.js")

    return [
        Route("/console/signin", signin, methods=["POST"]),
        Route("/console/signout", signout, methods=["POST"]),
        Route("/", index, methods=["GET", "HEAD"]),
        Route("/widget.js", widget, methods=["GET", "HEAD"]),
        Mount("/console", app=static, name="console"),
    ]


class WidgetCors:
    """CORS for the widget's routes, from any origin: they need a key that the page holds
    anyway, and no cookies are involved. Every other route goes to `api_cors` (the CORS that
    OBK_CORS_ORIGINS configures) when there is one: the widget keeps working on any site
    whatever origins the API as a whole allows."""

    def __init__(self, app: ASGIApp, api_cors: Callable[[ASGIApp], ASGIApp] | None = None) -> None:
        self.app = app
        self.other: ASGIApp = api_cors(app) if api_cors is not None else app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not WIDGET_PATHS.match(scope["path"]):
            await self.other(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if "origin" not in headers:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await send(
                {
                    "type": "http.response.start",
                    "status": 204,
                    "headers": [
                        (b"access-control-allow-origin", b"*"),
                        (b"access-control-allow-methods", ALLOW_METHODS.encode()),
                        (b"access-control-allow-headers", ALLOW_HEADERS.encode()),
                        (b"access-control-max-age", b"600"),
                        (b"content-length", b"0"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["Access-Control-Allow-Origin"] = "*"
            await send(message)

        await self.app(scope, receive, send_with_cors)

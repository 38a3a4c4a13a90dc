"""A fake Discord REST API on loopback: records every call, answers what the test queues."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.server.serving import serve_in_thread

BOT_TOKEN = "MTA5ODc2NTQzMjEwOTg3NjU0.discord-test.bot-token"
APP_ID = "1098765432109876543"
BOT_USER_ID = "1098765432109876000"


@dataclass
class FakeDiscord:
    """`calls`: (method, path, JSON body) in order. `failures`: HTTP statuses answered, first to
    last, before the normal answers."""

    url: str = ""
    calls: list[tuple[str, str, Any]] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def edits(self) -> list[tuple[str, dict[str, Any]]]:
        """The follow-ups: (the interaction token, the new content) in order."""
        with self.lock:
            return [
                (path.split("/")[3], body)
                for method, path, body in self.calls
                if method == "PATCH" and path.endswith("/messages/@original")
            ]

    async def handle(self, request: Request) -> Response:
        path = "/" + request.path_params["path"]
        body = await request.json() if await request.body() else None
        with self.lock:
            self.calls.append((request.method, path, body))
            failure = self.failures.pop(0) if self.failures else None
        if failure is not None:
            return JSONResponse({"message": "trouble", "code": 0}, failure)
        if path.startswith("/webhooks/"):
            # The webhook takes the interaction token in the path, not a bot token.
            _, _, app_id, _token, *_ = path.split("/")
            if app_id != APP_ID:
                return JSONResponse({"message": "Unknown Webhook", "code": 10015}, 404)
            return JSONResponse({"id": "1200", "content": (body or {}).get("content")})
        if request.headers.get("authorization") != f"Bot {BOT_TOKEN}":
            return JSONResponse({"message": "401: Unauthorized", "code": 0}, 401)
        if request.method == "GET" and path == "/users/@me":
            return JSONResponse({"id": BOT_USER_ID, "username": "helpdesk", "bot": True})
        if request.method == "POST" and path == f"/applications/{APP_ID}/commands":
            return JSONResponse({"id": "1300", "application_id": APP_ID, **(body or {})}, 201)
        return JSONResponse({"message": "404: Not Found", "code": 0}, 404)


@contextmanager
def fake_discord() -> Iterator[FakeDiscord]:
    fake = FakeDiscord()
    methods = ["GET", "POST", "PATCH", "PUT"]
    app = Starlette(routes=[Route("/api/v10/{path:path}", fake.handle, methods=methods)])
    with serve_in_thread(app) as origin:
        fake.url = origin + "/api/v10"
        yield fake

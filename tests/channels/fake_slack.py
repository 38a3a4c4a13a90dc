"""A fake Slack Web API on loopback: records every call, answers what the test queues."""

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

TOKEN = "xoxb-test-token-1234"


@dataclass
class FakeSlack:
    """`calls`: (method, form fields) in order. `failures`: responses given, first to last,
    before the normal ones (an HTTP status, or a Slack error name answered with ok: false)."""

    url: str = ""
    calls: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    failures: list[int | str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def posted(self) -> list[dict[str, str]]:
        with self.lock:
            return [data for method, data in self.calls if method == "chat.postMessage"]

    async def handle(self, request: Request) -> Response:
        method = request.path_params["method"]
        data = {k: str(v) for k, v in (await request.form()).items()}
        with self.lock:
            self.calls.append((method, data))
            failure = self.failures.pop(0) if self.failures else None
        if isinstance(failure, int):
            return Response(b"upstream trouble", failure)
        if isinstance(failure, str):
            return JSONResponse({"ok": False, "error": failure})
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return JSONResponse({"ok": False, "error": "invalid_auth"})
        body: dict[str, Any] = {"ok": True}
        if method == "auth.test":
            body.update(team_id="T0TEAM", user_id="U0BOT", team="Test team")
        elif method == "chat.postMessage":
            body.update(channel=data.get("channel"), ts=f"1700000000.{len(self.calls):06d}")
        return JSONResponse(body)


@contextmanager
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack()
    app = Starlette(routes=[Route("/api/{method}", fake.handle, methods=["POST"])])
    with serve_in_thread(app) as origin:
        fake.url = origin + "/api"
        yield fake

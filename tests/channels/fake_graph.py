"""A fake Graph API (WhatsApp Cloud API) on loopback: records every call, answers what the
test queues."""

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

ACCESS_TOKEN = "EAAG-test-access-token"
PHONE_NUMBER_ID = "106540352242922"
DISPLAY_NUMBER = "+1 555-010-0100"


@dataclass
class FakeGraph:
    """`calls`: (method, path, JSON body) in order. `failures`: answers given, first to last,
    before the normal ones: an HTTP status, or (status, Graph error code)."""

    url: str = ""
    calls: list[tuple[str, str, Any]] = field(default_factory=list)
    failures: list[int | tuple[int, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def sent(self) -> list[dict[str, Any]]:
        with self.lock:
            return [body for method, path, body in self.calls if path.endswith("/messages")]

    async def handle(self, request: Request) -> Response:
        path = "/" + request.path_params["path"]
        body = await request.json() if await request.body() else None
        with self.lock:
            self.calls.append((request.method, path, body))
            failure = self.failures.pop(0) if self.failures else None
        if isinstance(failure, tuple):
            status, code = failure
            error = {"message": "refused", "type": "OAuthException", "code": code}
            return JSONResponse({"error": error}, status)
        if isinstance(failure, int):
            return Response(b"upstream trouble", failure)
        if request.headers.get("authorization") != f"Bearer {ACCESS_TOKEN}":
            error = {
                "message": "Invalid OAuth access token.",
                "type": "OAuthException",
                "code": 190,
            }
            return JSONResponse({"error": error}, 401)
        if request.method == "POST" and path == f"/{PHONE_NUMBER_ID}/messages":
            to = (body or {}).get("to")
            sent = {"id": f"wamid.OUT{len(self.calls)}"}
            return JSONResponse(
                {"messaging_product": "whatsapp", "contacts": [{"wa_id": to}], "messages": [sent]}
            )
        if request.method == "GET" and path == f"/{PHONE_NUMBER_ID}":
            return JSONResponse(
                {
                    "id": PHONE_NUMBER_ID,
                    "display_phone_number": DISPLAY_NUMBER,
                    "verified_name": "Helpdesk",
                }
            )
        error = {"message": "Unsupported request", "type": "GraphMethodException", "code": 100}
        return JSONResponse({"error": error}, 400)


@contextmanager
def fake_graph() -> Iterator[FakeGraph]:
    fake = FakeGraph()
    app = Starlette(routes=[Route("/v21.0/{path:path}", fake.handle, methods=["GET", "POST"])])
    with serve_in_thread(app) as origin:
        fake.url = origin + "/v21.0"
        yield fake

"""The access log: one line per HTTP request, with its status, duration and the key it used.

Pure ASGI (no BaseHTTPMiddleware), so streamed responses pass through untouched; the duration
runs to the end of the body. Query strings are left out: signed content URLs carry their
signature there.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("openbotkit.access")


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees if the app fails before it answers

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            if log.isEnabledFor(logging.INFO):
                self._write(scope, status, (time.perf_counter() - started) * 1000)

    @staticmethod
    def _write(scope: Scope, status: int, ms: float) -> None:
        client = scope.get("client")
        peer = f"{client[0]}:{client[1]}" if client else "-"
        method, path = scope["method"], scope["path"]
        version = scope.get("http_version", "1.1")
        key_id = (scope.get("state") or {}).get("key_id")
        log.info(
            '%s "%s %s HTTP/%s" %d %.1fms%s',
            peer,
            method,
            path,
            version,
            status,
            ms,
            f" key {key_id}" if key_id else "",
            extra={
                "client": peer,
                "method": method,
                "path": path,
                "status": status,
                "durationMs": round(ms, 2),
                "keyId": key_id,
            },
        )

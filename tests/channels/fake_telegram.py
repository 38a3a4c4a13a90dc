"""A fake Telegram Bot API on loopback: getUpdates long-polls the updates the test pushes and
forgets the ones an offset confirms, as Telegram does; every call is recorded."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.server.serving import serve_in_thread

TOKEN = "123456789:AAtest-token_for-the-fake"
BOT_ID = 4242
BOT_USERNAME = "obk_test_bot"


@dataclass
class FakeTelegram:
    """`updates`: pushed by the test, returned by getUpdates until an offset confirms them.
    `sent`: the sendMessage calls answered (what reached the chat), with the time they came.
    `failures`: answers given to sendMessage first, first to last (an HTTP status; 403 is a
    bot blocked by the user); `fail_on`: the same for the sendMessage call of that number.
    `stall`: while set, sendMessage calls wait (a worker mid-send) and are not delivered;
    `stalled` counts them."""

    url: str = ""
    updates: list[dict[str, Any]] = field(default_factory=list)
    pushed_at: dict[int, float] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    sent_at: list[float] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)
    fail_on: dict[int, int] = field(default_factory=dict)
    send_calls: int = 0
    webhook: dict[str, Any] = field(default_factory=dict)
    stall: threading.Event = field(default_factory=threading.Event)
    stalled: int = 0
    polling: int = 0
    most_polling: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    _next_id: int = 1000

    def push(self, text: str, *, user: int = 7001, username: str = "alice", **extra: Any) -> int:
        """A private message from `user` (or, with `chat`, in that chat); its update_id."""
        with self.lock:
            self._next_id += 1
            update_id = self._next_id
            chat = extra.pop("chat", {"id": user, "type": "private"})
            message = {
                "message_id": update_id * 10,
                "from": {"id": user, "is_bot": False, "first_name": "A", "username": username},
                "chat": chat,
                "date": int(time.time()),
                "text": text,
                **extra,
            }
            self.updates.append({"update_id": update_id, "message": message})
            self.pushed_at[update_id] = time.perf_counter()
        return update_id

    def methods(self) -> list[str]:
        with self.lock:
            return [method for method, _ in self.calls]

    def replies(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.sent)

    async def handle(self, request: Request) -> Response:
        method = request.path_params["method"]
        data = await request.json() if await request.body() else {}
        with self.lock:
            self.calls.append((method, data))
        if request.path_params["token"] != TOKEN:
            return _error(401, "Unauthorized")
        if method == "getMe":
            return _ok(
                {"id": BOT_ID, "is_bot": True, "first_name": "OBK", "username": BOT_USERNAME}
            )
        if method == "getUpdates":
            return await self._get_updates(data)
        if method == "setWebhook":
            self.webhook = {"url": data["url"], "secret_token": data.get("secret_token")}
            return _ok(True)
        if method == "deleteWebhook":
            self.webhook = {}
            return _ok(True)
        if method == "sendChatAction":
            return _ok(True)
        if method == "sendMessage":
            return await self._send(data)
        return _error(404, "Not Found")

    async def _get_updates(self, data: dict[str, Any]) -> Response:
        if self.webhook:
            return _error(409, "Conflict: can't use getUpdates method while webhook is active")
        offset, wait_s = int(data.get("offset") or 0), float(data.get("timeout") or 0)
        with self.lock:
            self.polling += 1
            self.most_polling = max(self.most_polling, self.polling)
        try:
            deadline = time.monotonic() + wait_s
            while True:
                with self.lock:
                    self.updates = [u for u in self.updates if u["update_id"] >= offset]
                    found = list(self.updates)
                if found or time.monotonic() >= deadline:
                    return _ok(found)
                await asyncio.sleep(0.01)
        finally:
            with self.lock:
                self.polling -= 1

    async def _send(self, data: dict[str, Any]) -> Response:
        if len(str(data.get("text", ""))) > 4096:
            return _error(400, "Bad Request: message is too long")
        with self.lock:
            self.send_calls += 1
            failure = self.failures.pop(0) if self.failures else None
            failure = self.fail_on.pop(self.send_calls, failure)
        if failure is not None:
            return _error(
                failure,
                "Forbidden: bot was blocked by the user"
                if failure == 403
                else "Internal Server Error",
            )
        if self.stall.is_set():
            with self.lock:
                self.stalled += 1
            while self.stall.is_set():
                await asyncio.sleep(0.01)
            return _error(502, "Bad Gateway")  # the sender is gone by now: nothing delivered
        with self.lock:
            self.sent.append(data)
            self.sent_at.append(time.perf_counter())
            count = len(self.sent)
        return _ok(
            {"message_id": 90_000 + count, "chat": {"id": data["chat_id"]}, "text": data["text"]}
        )


def _ok(result: Any) -> Response:
    return JSONResponse({"ok": True, "result": result})


def _error(code: int, description: str) -> Response:
    return JSONResponse({"ok": False, "error_code": code, "description": description}, code)


@contextmanager
def fake_telegram() -> Iterator[FakeTelegram]:
    fake = FakeTelegram()
    route = Route("/bot{token}/{method}", fake.handle, methods=["POST"])
    with serve_in_thread(Starlette(routes=[route])) as origin:
        fake.url = origin
        yield fake

"""Admission and lanes (server/lanes.py) on a real uvicorn: a process works on a bounded number of
requests at once, in arrival order; writers stalled behind another process's write lock do not
hold up reads; and neither a streamed generation nor a slow upload takes a place.

The actions live in a private registry and block until the test lets them go, so what runs and
what waits can be seen from outside, as a client sees it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from openbotkit.actions.base import Input
from openbotkit.actions.registry import Effect, Registry, action
from openbotkit.engine import Engine
from openbotkit.server.app import create_app
from openbotkit.services import bots
from openbotkit.services.secrets import create_secret
from openbotkit.settings import Settings
from tests.server.serving import serve_in_thread
from tests.store.holding import another_process_writing


class HoldInput(Input):
    label: str


class HoldOutput(BaseModel):
    label: str


@dataclass
class Gate:
    """Which held actions are running now, the most at once per effect, and the release."""

    release: threading.Event = field(default_factory=threading.Event)
    running: dict[str, set[str]] = field(default_factory=lambda: {"read": set(), "write": set()})
    most: dict[str, int] = field(default_factory=lambda: {"read": 0, "write": 0})
    started: list[str] = field(default_factory=list)  # labels, in the order their work began
    lock: threading.Lock = field(default_factory=threading.Lock)

    def begin(self, label: str) -> None:
        with self.lock:
            self.started.append(label)

    def hold(self, kind: str, label: str) -> HoldOutput:
        with self.lock:
            self.started.append(label)
            self.running[kind].add(label)
            self.most[kind] = max(self.most[kind], len(self.running[kind]))
        try:
            assert self.release.wait(20)
        finally:
            with self.lock:
                self.running[kind].discard(label)
        return HoldOutput(label=label)

    def wait_running(self, kind: str, label: str) -> None:
        deadline = time.monotonic() + 10
        while label not in self.running[kind]:
            assert time.monotonic() < deadline, f"{label} never started"
            time.sleep(0.01)


def held_registry(gate: Gate) -> Registry:
    registry = Registry()

    @action("hold_write", Effect.WRITE, "POST /hold/write", registry=registry)
    def hold_write(_ctx: Any, inp: HoldInput) -> HoldOutput:
        """Write, held until released."""
        return gate.hold("write", inp.label)

    @action("hold_read", Effect.READ, "POST /hold/read", registry=registry, offload=True)
    def hold_read(_ctx: Any, inp: HoldInput) -> HoldOutput:
        """Read, held until released."""
        return gate.hold("read", inp.label)

    def tokens(_scope: Any, inp: HoldInput) -> Iterator[dict[str, Any]]:
        yield {"type": "token", "data": {"token": inp.label}}
        yield {"type": "result", "data": {"label": inp.label}}

    @action("generate", Effect.WRITE, "POST /generate", registry=registry, stream=tokens)
    def generate(_ctx: Any, inp: HoldInput) -> HoldOutput:
        """A streamed action, as a completion is."""
        return HoldOutput(label=inp.label)

    @action("write_bot", Effect.WRITE, "POST /write-bot", registry=registry)
    def write_bot(ctx: Any, inp: HoldInput) -> HoldOutput:
        """A real write: a bot, in the action's transaction."""
        bots.create(ctx, {"name": inp.label})
        return HoldOutput(label=inp.label)

    @action("ping", Effect.READ, "POST /ping", registry=registry)
    def ping(_ctx: Any, inp: HoldInput) -> HoldOutput:
        """A plain read, served on the event loop."""
        gate.begin(inp.label)
        return HoldOutput(label=inp.label)

    return registry


@dataclass
class Served:
    origin: str
    headers: dict[str, str]
    gate: Gate
    database_url: str

    def post(self, path: str, label: str, accept: str = "application/json") -> httpx.Response:
        headers = {**self.headers, "Accept": accept}
        url = self.origin + "/api/v1" + path
        return httpx.post(url, json={"label": label}, headers=headers, timeout=30)


@contextmanager
def released_at_the_end(gate: Gate) -> Iterator[None]:
    try:
        yield
    finally:
        gate.release.set()


@pytest.fixture
def served(tmp_path: Any) -> Iterator[Served]:
    # One thread per lane: one request admitted at once.
    settings = Settings(home=tmp_path / "home", server_threads=1)
    engine = Engine(settings)
    token = create_secret(engine.runtime, "alice")[1]
    gate = Gate()
    app = create_app(settings, engine, registry=held_registry(gate))
    with serve_in_thread(app) as origin:
        yield Served(origin, {"Authorization": f"Bearer {token}"}, gate, engine.store.url)
        gate.release.set()


def test_admission_is_bounded_and_in_arrival_order(served: Served) -> None:
    gate = served.gate
    with ThreadPoolExecutor(8) as pool, released_at_the_end(gate):
        first = pool.submit(served.post, "/hold/write", "w1")
        gate.wait_running("write", "w1")
        # One request is admitted (w1): the next ones wait, reads in their own lane, writes in
        # theirs and plain reads on the event loop alike, each arriving a little after the last
        # (read, plain, write, read, plain: an order that neither lane nor kind would give) ...
        waiting: list[Future[httpx.Response]] = []
        for path, label in [
            ("/hold/read", "r1"),
            ("/ping", "p1"),
            ("/hold/write", "w2"),
            ("/hold/read", "r2"),
            ("/ping", "p2"),
        ]:
            waiting.append(pool.submit(served.post, path, label))
            time.sleep(0.2)
        time.sleep(0.1)
        assert gate.running == {"read": set(), "write": {"w1"}}
        assert gate.started == ["w1"]
        assert not any(f.done() for f in waiting)
        # ... while a streamed generation is not admitted work: it is answered meanwhile.
        streamed = served.post("/generate", "g1", accept="application/jsonl")
        assert streamed.status_code == 200 and '"result"' in streamed.text
        assert not any(f.done() for f in waiting)
        gate.release.set()
        answers = [f.result(timeout=20).json()["label"] for f in [first, *waiting]]
        assert answers == ["w1", "r1", "p1", "w2", "r2", "p2"]
    # One at a time, first come first served: each began in the order it arrived.
    assert gate.started == ["w1", "r1", "p1", "w2", "r2", "p2"]
    assert gate.most == {"read": 1, "write": 1}


def test_slow_uploads_hold_no_place_in_admission(served: Served) -> None:
    """Bodies are read before admission: clients that send a request's head and then trickle
    (or stall) its body take no place, and a plain request is answered."""
    import socket

    port = int(served.origin.rsplit(":", 1)[1])
    stalled = []
    try:
        for _ in range(5):
            sock = socket.create_connection(("127.0.0.1", port))
            head = (
                "POST /api/v1/hold/write HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: {served.headers['Authorization']}\r\n"
                "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
            )
            sock.sendall(head.encode())
            stalled.append(sock)
        time.sleep(0.3)
        answered = served.post("/ping", "p2")
        assert answered.status_code == 200 and answered.json()["label"] == "p2"
        assert served.gate.running["write"] == set()
    finally:
        for sock in stalled:
            sock.close()


def test_writers_stalled_behind_another_process_do_not_hold_up_reads(served: Served) -> None:
    """Another process holds SQLite's write lock (a long transaction): the writers queued here
    wait for it, and once one has waited past its patience the process widens admission, so a
    read is still answered; when the other process goes away every write lands."""
    statement = "UPDATE bots SET name = name WHERE 0"
    with (
        another_process_writing(served.database_url, statement) as holder,
        ThreadPoolExecutor(8) as pool,
    ):
        writes = [pool.submit(served.post, "/write-bot", f"b{i}") for i in range(5)]
        time.sleep(0.5)
        assert not any(w.done() for w in writes)
        started = time.monotonic()
        assert served.post("/ping", "p3").json()["label"] == "p3"
        assert time.monotonic() - started < 2
        assert not any(w.done() for w in writes)
        holder.kill()
        holder.wait(timeout=10)
        assert all(w.result(timeout=20).status_code == 200 for w in writes)

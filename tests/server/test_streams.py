"""JSONL streams of actions declaring `extensions["stream"]`, over a real uvicorn on loopback.

The actions here live in a private registry: they test the streaming seam itself (errors after
the first line, a client that goes away), which the real completion cannot trigger on demand.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from openbotkit.actions.base import Input
from openbotkit.actions.registry import Effect, Registry, action
from openbotkit.engine import Engine
from openbotkit.errors import NotFound
from openbotkit.server.app import create_app
from openbotkit.services.secrets import create_secret
from openbotkit.settings import Settings
from tests.server.serving import serve_in_thread


class TickInput(Input):
    count: int = 3
    fail_at: int | None = None
    fail_with: str = "bug"


class TickOutput(BaseModel):
    count: int


@dataclass
class Probe:
    """What the stream generator did, seen from the test."""

    produced: int = 0
    closed: threading.Event = field(default_factory=threading.Event)
    closed_on: str = ""


def tick_registry(probe: Probe) -> Registry:
    registry = Registry()

    def ticks(_scope: Any, inp: TickInput) -> Iterator[dict[str, Any]]:
        try:
            for i in range(inp.count):
                if inp.fail_at == i:
                    if inp.fail_with == "bug":
                        raise RuntimeError("secret internals")
                    raise NotFound("tick vanished")
                probe.produced += 1
                yield {"type": "token", "data": {"token": str(i)}}
                time.sleep(0.01)
            yield {"type": "result", "data": {"count": inp.count}}
        finally:
            probe.closed_on = threading.current_thread().name
            probe.closed.set()

    @action("tick", Effect.WRITE, "POST /tick", registry=registry, stream=ticks)
    def tick(_ctx: Any, inp: TickInput) -> TickOutput:
        """Count, as one JSON answer or as a stream of tokens."""
        return TickOutput(count=inp.count)

    return registry


@dataclass
class Served:
    url: str
    headers: dict[str, str]
    probe: Probe


@pytest.fixture
def served(settings: Settings) -> Iterator[Served]:
    probe = Probe()
    engine = Engine(settings)
    token = create_secret(engine.runtime, "alice")[1]
    app = create_app(settings, engine, registry=tick_registry(probe))
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/jsonl"}
    with serve_in_thread(app) as origin:
        yield Served(origin + "/api/v1/tick", headers, probe)


def events(resp: httpx.Response) -> list[dict[str, Any]]:
    assert resp.headers["content-type"].startswith("application/jsonl")
    lines = resp.text.split("\n")
    assert lines[-1] == "" and all(lines[:-1]), "every line is one JSON object, none blank"
    return [json.loads(line) for line in lines[:-1]]


def test_stream_sends_events_then_one_result(served: Served) -> None:
    resp = httpx.post(served.url, json={"count": 2}, headers=served.headers)
    assert [e["type"] for e in events(resp)] == ["token", "token", "result"]


def test_stream_is_json_without_jsonl_accept(served: Served) -> None:
    resp = httpx.post(served.url, json={"count": 2}, headers={**served.headers, "Accept": "*/*"})
    assert resp.json() == {"count": 2}


def test_stream_error_before_the_first_event_is_a_json_error(served: Served) -> None:
    resp = httpx.post(served.url, json={"failAt": 0, "failWith": "obk"}, headers=served.headers)
    assert resp.status_code == 404
    assert resp.json()["code"] == "NOT_FOUND"


@pytest.mark.parametrize(
    ("fail_with", "code", "message"),
    [("obk", "NOT_FOUND", "tick vanished"), ("bug", "INTERNAL_SERVER_ERROR", None)],
)
def test_stream_error_after_the_first_event_is_an_error_line(
    served: Served, fail_with: str, code: str, message: str | None
) -> None:
    resp = httpx.post(
        served.url, json={"count": 3, "failAt": 1, "failWith": fail_with}, headers=served.headers
    )
    assert resp.status_code == 200
    got = events(resp)
    assert [e["type"] for e in got] == ["token", "error"]
    assert got[-1]["data"]["code"] == code
    if message:
        assert got[-1]["data"]["message"] == message
    assert "secret internals" not in resp.text
    assert served.probe.closed.wait(5)


def test_client_going_away_closes_the_generator_on_a_worker_thread(served: Served) -> None:
    with (
        httpx.Client() as client,
        client.stream("POST", served.url, json={"count": 10_000}, headers=served.headers) as resp,
    ):
        first = next(resp.iter_lines())
        assert json.loads(first)["type"] == "token"
    assert served.probe.closed.wait(5), "generation must stop when the client leaves"
    produced = served.probe.produced
    time.sleep(0.3)
    assert served.probe.produced == produced < 100
    # Closing may clean up (roll back, say): it must not block the event loop's thread.
    assert served.probe.closed_on != threading.current_thread().name
    assert served.probe.closed_on.startswith("obk-long")  # the lane for long work

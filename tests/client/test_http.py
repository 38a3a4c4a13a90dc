"""The connector's HTTP backend against a real `obk serve` app on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from openbotkit.actions import REGISTRY
from openbotkit.actions.base import Input
from openbotkit.actions.registry import Effect, Registry, action
from openbotkit.client.http import HttpBackend
from openbotkit.engine import Engine
from openbotkit.errors import (
    InvalidInput,
    LimitsReached,
    NotAuthenticated,
    NotFound,
    ProviderError,
)
from openbotkit.server.app import create_app
from openbotkit.services.secrets import create_secret
from openbotkit.settings import Settings
from tests.server.serving import free_port, serve_in_thread


@pytest.fixture
def origin_and_secret(settings: Settings) -> Iterator[tuple[str, str]]:
    small = settings.model_copy(update={"max_file_bytes": 1000})
    engine = Engine(small)
    token = create_secret(engine.runtime, "alice")[1]
    with serve_in_thread(create_app(small, engine)) as origin:
        yield origin, token
    engine.close()


@pytest.fixture
def backend(origin_and_secret: tuple[str, str]) -> HttpBackend:
    return HttpBackend(*origin_and_secret)


def call(backend: HttpBackend, name: str, data: dict[str, Any]) -> dict[str, Any]:
    act = REGISTRY.get(name)
    return backend.run(act, act.parse_input(data))


def test_prefix_is_v1_only_on_the_hosted_api() -> None:
    assert HttpBackend("https://api.chatbotkit.com", None).prefix == "/v1"
    assert HttpBackend("https://api.chatbotkit.com/", None).prefix == "/v1"
    assert HttpBackend("http://127.0.0.1:8080", None).prefix == "/api/v1"


def test_run_round_trips_with_nested_meta_filters(backend: HttpBackend) -> None:
    made = call(backend, "create_bot", {"name": "n", "meta": {"a": {"b": 1}, "on": True}})
    other = call(backend, "create_bot", {"meta": {"a": {"b": 2}}})
    fetched = call(backend, "fetch_bot", {"botId": made["id"]})
    assert fetched["name"] == "n" and isinstance(fetched["createdAt"], int)
    for meta in ({"a": {"b": 1}}, {"on": True}):
        listed = call(backend, "list_bots", {"meta": meta})
        assert [b["id"] for b in listed["items"]] == [made["id"]], meta
    assert call(backend, "list_bots", {"take": 1})["items"][0]["id"] == other["id"]


def test_error_statuses_map_back_to_the_same_errors(
    backend: HttpBackend, origin_and_secret: tuple[str, str]
) -> None:
    with pytest.raises(NotFound):
        call(backend, "fetch_bot", {"botId": "missing"})
    with pytest.raises(InvalidInput) as bad:
        call(backend, "list_bots", {"cursor": "not-an-item"})
    assert bad.value.details[0].pointer == "/cursor"
    with pytest.raises(NotAuthenticated):
        call(HttpBackend(origin_and_secret[0], "obk_wrong"), "list_bots", {})
    with pytest.raises(NotAuthenticated):
        call(HttpBackend(origin_and_secret[0], None), "list_bots", {})


def test_unreachable_server_is_a_provider_error() -> None:
    with pytest.raises(ProviderError, match=r"127\.0\.0\.1"):
        call(HttpBackend(f"http://127.0.0.1:{free_port()}", "x", timeout=2), "list_bots", {})


def test_local_paths_upload_as_the_body_and_download_into_a_file(
    backend: HttpBackend, tmp_path: Path
) -> None:
    source = tmp_path / "notes.md"
    source.write_bytes(b"# Notes\n\nThe shop opens at 9am.\n")
    file_id = call(backend, "create_file", {})["id"]
    assert call(backend, "upload_file", {"fileId": file_id, "path": str(source)})["id"] == file_id
    assert call(backend, "fetch_file", {"fileId": file_id})["name"] == "notes.md"
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    got = call(backend, "download_file", {"fileId": file_id, "path": str(out_dir)})
    assert Path(got["path"]) == out_dir / "notes.md"
    assert Path(got["path"]).read_bytes() == source.read_bytes()
    assert got["contentType"] == "text/markdown"


def test_oversized_local_upload_is_limits_reached(backend: HttpBackend, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 5000)
    file_id = call(backend, "create_file", {})["id"]
    with pytest.raises(LimitsReached):
        call(backend, "upload_file", {"fileId": file_id, "path": str(big)})


def test_download_of_a_file_without_content_is_refused(
    backend: HttpBackend, tmp_path: Path
) -> None:
    file_id = call(backend, "create_file", {})["id"]
    target = tmp_path / "empty"
    target.mkdir()
    with pytest.raises(NotFound, match="no content yet"):
        call(backend, "download_file", {"fileId": file_id, "path": str(target)})
    assert list(target.iterdir()) == []


class EchoInput(Input):
    text: str = "hi"
    crash: bool = False


class EchoOutput(BaseModel):
    text: str


def echo_registry() -> Registry:
    registry = Registry()

    def events(_scope: Any, inp: EchoInput) -> Iterator[dict[str, Any]]:
        for word in inp.text.split():
            yield {"type": "token", "data": {"token": word}}
        yield {"type": "result", "data": {"text": inp.text}}

    @action("echo", Effect.WRITE, "POST /echo", registry=registry, stream=events)
    def echo(_ctx: Any, inp: EchoInput) -> EchoOutput:
        """Say it back, or fail like a bug when asked to."""
        if inp.crash:
            raise RuntimeError("internal detail")
        return EchoOutput(text=inp.text)

    return registry


@pytest.fixture
def echo_backend(settings: Settings) -> Iterator[tuple[HttpBackend, Registry]]:
    engine = Engine(settings)
    token = create_secret(engine.runtime, "alice")[1]
    registry = echo_registry()
    with serve_in_thread(create_app(settings, engine, registry=registry)) as origin:
        yield HttpBackend(origin, token), registry
    engine.close()


def test_stream_yields_the_servers_events(echo_backend: tuple[HttpBackend, Registry]) -> None:
    backend, registry = echo_backend
    act = registry.get("echo")
    inp = EchoInput(text="a b")
    events = list(backend.stream(act, inp))
    assert [e["type"] for e in events] == ["token", "token", "result"]
    assert events[-1]["data"] == {"text": "a b"}


def test_a_server_failure_is_a_provider_error(echo_backend: tuple[HttpBackend, Registry]) -> None:
    backend, registry = echo_backend
    inp = EchoInput(crash=True)
    with pytest.raises(ProviderError) as err:
        backend.run(registry.get("echo"), inp)
    assert "internal detail" not in err.value.message

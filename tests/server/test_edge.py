"""What a hostile client gets at the edge: URL uploads that aim inside, local paths, hostile
file names, bodies past the limit in every shape, unbounded counts."""

from __future__ import annotations

import base64
import http.server
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from openbotkit.engine import Engine
from openbotkit.errors import InvalidInput
from openbotkit.retrieval.embedders import Embedder
from openbotkit.settings import Settings
from tests.server.test_app import Client

BODY = b"The Zephyr-9 lifts 42 kilograms.\n"


class _Secret(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"internal secret")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def internal_server() -> Iterator[tuple[int, list[str]]]:
    hits: list[str] = []
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), type("H", (_Secret,), {"hits": hits})
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], hits
    server.shutdown()
    server.server_close()


def _client(tmp_path: Path, embedder: Embedder, **settings: Any) -> tuple[Engine, Client]:
    engine = Engine(Settings(home=tmp_path / "h", **settings), embedder=embedder)
    return engine, Client(engine)


def new_file(client: Client, **fields: Any) -> str:
    return str(client.request("POST", "/api/v1/file/create", json=fields).json()["id"])


def test_url_upload_to_a_name_resolving_inside_is_refused_without_echo(
    tmp_path: Path, local_embedder: Embedder, internal_server: tuple[int, list[str]]
) -> None:
    """A host name that resolves to loopback (the installation's own resolver seam answers it,
    as DNS would) is refused over HTTP, the answer does not say where it points, nothing is
    fetched and nothing is stored."""
    port, hits = internal_server
    engine, client = _client(
        tmp_path,
        local_embedder,
        resolve_hosts={"intranet.test": ("127.0.0.1",), "nat64.test": ("64:ff9b::7f00:1",)},
    )
    try:
        file_id = new_file(client)
        for host in ("intranet.test", "nat64.test"):
            resp = client.request(
                "POST",
                f"/api/v1/file/{file_id}/upload",
                json={"file": f"http://{host}:{port}/secret"},
            )
            assert resp.status_code == 400, resp.text
            assert "not a public address" in resp.json()["message"]
            assert "127.0.0.1" not in resp.text and "7f00" not in resp.text
        assert hits == []
        got = client.request("GET", f"/api/v1/file/{file_id}/download")
        assert got.status_code == 204
    finally:
        client.close()
        engine.close()


def test_url_upload_connects_to_the_resolved_address_with_the_name_kept(
    tmp_path: Path, local_embedder: Embedder, internal_server: tuple[int, list[str]]
) -> None:
    port, hits = internal_server
    engine, client = _client(
        tmp_path,
        local_embedder,
        allow_private_urls=True,
        resolve_hosts={"docs.test": ("127.0.0.1",)},
    )
    try:
        file_id = new_file(client)
        resp = client.request(
            "POST", f"/api/v1/file/{file_id}/upload", json={"file": f"http://docs.test:{port}/a"}
        )
        assert resp.status_code == 200, resp.text
        assert client.request("GET", f"/api/v1/file/{file_id}/download").content == (
            b"internal secret"
        )
        assert hits == ["/a"]
    finally:
        client.close()
        engine.close()


def test_python_api_refuses_local_paths_unless_opted_in(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_bytes(BODY)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    closed = Engine(Settings(home=tmp_path / "a"))
    try:
        file_id = closed.execute("create_file", {"name": "x.txt"})["id"]
        with pytest.raises(InvalidInput, match="local_paths=True") as caught:
            closed.execute("upload_file", {"fileId": file_id, "path": str(secret)})
        assert caught.value.details[0].rule == "local_only"
        closed.execute("upload_file", {"fileId": file_id, "file": _data_url(BODY)})
        with pytest.raises(InvalidInput, match="local_paths=True"):
            closed.execute("download_file", {"fileId": file_id, "path": str(out_dir)})
        assert list(out_dir.iterdir()) == []
    finally:
        closed.close()
    opened = Engine(Settings(home=tmp_path / "b"), local_paths=True)
    try:
        file_id = opened.execute("create_file", {"name": "x.txt"})["id"]
        opened.execute("upload_file", {"fileId": file_id, "path": str(secret)})
        got = opened.execute("download_file", {"fileId": file_id, "path": str(out_dir)})
        assert Path(got["path"]).read_bytes() == BODY
    finally:
        opened.close()


def test_an_engine_that_honours_paths_cannot_be_served(tmp_path: Path) -> None:
    from openbotkit.server.app import create_app

    engine = Engine(Settings(home=tmp_path / "h"), local_paths=True)
    with pytest.raises(ValueError, match="local_paths"):
        create_app(engine.settings, engine)
    engine.close()


def _data_url(data: bytes) -> str:
    return "data:text/plain;base64," + base64.b64encode(data).decode()


@pytest.mark.parametrize("name", ["../../escaped.txt", "..", "/etc/passwd", "..\\..\\win.txt"])
def test_download_into_a_directory_stays_inside(tmp_path: Path, name: str) -> None:
    engine = Engine(Settings(home=tmp_path / "h"), local_paths=True)
    out_dir = tmp_path / "deep" / "out"
    out_dir.mkdir(parents=True)
    try:
        file_id = engine.execute("create_file", {"name": name})["id"]
        engine.execute("upload_file", {"fileId": file_id, "file": _data_url(BODY)})
        got = Path(
            engine.execute("download_file", {"fileId": file_id, "path": str(out_dir)})["path"]
        )
        assert got.parent == out_dir and got.read_bytes() == BODY
        assert sorted(
            p.name for p in tmp_path.rglob("*") if p.is_file() and "h" not in p.parts
        ) == [got.name]
    finally:
        engine.close()


async def _chunks(count: int, size: int, consumed: list[int]) -> AsyncIterator[bytes]:
    for i in range(count):
        consumed.append(i)
        yield b"x" * size


def test_multipart_and_chunked_bodies_are_cut_off_while_streaming(
    tmp_path: Path, local_embedder: Embedder
) -> None:
    """A 64 MB body against a 1,000-byte limit: refused after the first chunks arrive, not
    after the whole body was read (the generator counts what the server pulled)."""
    engine, client = _client(tmp_path, local_embedder, max_file_bytes=1000)
    try:
        file_id = new_file(client)
        boundary = "obkboundary"
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            'filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()

        async def multipart(consumed: list[int]) -> AsyncIterator[bytes]:
            yield head
            async for chunk in _chunks(64, 1 << 20, consumed):
                yield chunk

        for content_type, body_of in (
            (f"multipart/form-data; boundary={boundary}", multipart),
            ("text/plain", lambda consumed: _chunks(64, 1 << 20, consumed)),
            ("application/json", lambda consumed: _chunks(64, 1 << 20, consumed)),
        ):
            consumed: list[int] = []
            resp = client.request(
                "POST",
                f"/api/v1/file/{file_id}/upload",
                content=body_of(consumed),
                headers={"Content-Type": content_type},
            )
            assert resp.status_code in (413, 429), (content_type, resp.text)
            assert resp.json()["code"] == "LIMITS_REACHED"
            assert len(consumed) <= 10, (content_type, len(consumed))
        assert client.request("GET", f"/api/v1/file/{file_id}/download").status_code == 204
        staging = tmp_path / "h" / "blobs" / ".staging"
        assert not staging.exists() or list(staging.iterdir()) == []
    finally:
        client.close()
        engine.close()


def test_counts_are_bounded(tmp_path: Path, local_embedder: Embedder) -> None:
    engine, client = _client(tmp_path, local_embedder)
    try:
        many = [{"type": "user", "text": "hi"}] * 1001
        resp = client.request("POST", "/api/v1/conversation/complete", json={"messages": many})
        assert resp.status_code == 400 and resp.json()["details"][0]["pointer"] == "/messages"
        for model in ("smollm2/maxTokens=100000000", "smollm2/interactionMaxMessages=99999999"):
            resp = client.request(
                "POST",
                "/api/v1/conversation/complete",
                json={"model": model, "messages": [{"type": "user", "text": "hi"}]},
            )
            assert resp.status_code == 400, resp.text
            assert "must be between" in resp.json()["message"]
    finally:
        client.close()
        engine.close()


def test_attachments_are_guarded_like_url_uploads(tmp_path: Path, local_embedder: Embedder) -> None:
    engine, client = _client(tmp_path, local_embedder, resolve_hosts={"in.test": ("10.0.0.1",)})
    try:
        for url, status in (("http://in.test/doc", 400), ("file:///etc/passwd", 400)):
            resp = client.request(
                "POST",
                "/api/v1/conversation/complete",
                json={"messages": [{"type": "user", "text": "hi"}], "attachments": [{"url": url}]},
            )
            assert resp.status_code == status, resp.text
            assert "10.0.0.1" not in resp.text
    finally:
        client.close()
        engine.close()


def test_conversation_contact_by_fingerprint(tmp_path: Path, local_embedder: Embedder) -> None:
    engine, client = _client(tmp_path, local_embedder)
    try:

        def create(fingerprint: str) -> str:
            resp = client.request(
                "POST",
                "/api/v1/conversation/create",
                json={"contact": {"fingerprint": fingerprint, "name": "Ann", "email": "a@x.io"}},
            )
            assert resp.status_code == 200, resp.text
            fetched = client.request("GET", f"/api/v1/conversation/{resp.json()['id']}/fetch")
            return str(fetched.json()["contactId"])

        first, again, other = create("fp-1"), create("fp-1"), create("fp-2")
        assert first == again != other
        resp = client.request("POST", "/api/v1/conversation/create", json={"contact": {}})
        assert resp.status_code == 400 and "fingerprint" in resp.text
    finally:
        client.close()
        engine.close()

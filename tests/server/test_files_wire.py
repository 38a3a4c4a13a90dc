"""The five upload modes, downloads and signed content URLs over HTTP (in-process)."""

from __future__ import annotations

import base64
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openbotkit.engine import Engine
from openbotkit.retrieval.embedders import Embedder
from openbotkit.settings import Settings
from tests.ingestion.samples import HTML
from tests.server.test_app import Client

BODY = b"The Zephyr-9 lifts 42 kilograms.\n"


@pytest.fixture
def client(engine: Engine) -> Iterator[Client]:
    c = Client(engine)
    yield c
    c.close()


def new_file(client: Client, **fields: Any) -> str:
    return str(client.request("POST", "/api/v1/file/create", json=fields).json()["id"])


def download(client: Client, file_id: str, **headers: str) -> Any:
    return client.request("GET", f"/api/v1/file/{file_id}/download", headers=headers)


def test_data_url_upload_and_binary_download(client: Client) -> None:
    file_id = new_file(client, name="facts.txt")
    data_url = "data:text/plain;base64," + base64.b64encode(BODY).decode()
    out = client.request("POST", f"/api/v1/file/{file_id}/upload", json={"file": data_url}).json()
    assert out["id"] == file_id and out["downloadRequest"]["url"].startswith("http://testserver/")
    resp = download(client, file_id)  # no Accept: the bytes
    assert resp.content == BODY
    assert resp.headers["content-type"].startswith("text/plain")
    assert 'attachment; filename="facts.txt"' in resp.headers["content-disposition"]
    meta = client.request("GET", f"/api/v1/file/{file_id}/fetch").json()["meta"]
    assert meta == {"contentType": "text/plain"}


def test_download_with_json_accept_is_a_signed_url(client: Client) -> None:
    file_id = new_file(client, name="a.txt")
    client.request(
        "POST",
        f"/api/v1/file/{file_id}/upload",
        content=BODY,
        headers={"Content-Type": "text/plain"},
    )
    url = download(client, file_id, Accept="application/json").json()["url"]
    assert "signature=" in url
    anonymous = client.loop.run_until_complete(client.http.get(url))
    assert anonymous.content == BODY  # the link itself is the authorization
    tampered = client.loop.run_until_complete(
        client.http.get(url.replace("signature=", "signature=0"))
    )
    assert tampered.status_code == 403


def test_direct_upload_with_the_node_sdks_joined_content_type(client: Client) -> None:
    file_id = new_file(client)
    out = client.request(
        "POST",
        f"/api/v1/file/{file_id}/upload",
        json={"file": {"type": "text/plain", "size": len(BODY), "name": "n.txt"}},
    ).json()
    req = out["uploadRequest"]
    assert req["method"] == "PUT"
    assert req["headers"]["content-type"] == "text/plain"
    assert all(k == k.lower() for k in req["headers"])
    put = client.loop.run_until_complete(
        client.http.put(
            req["url"],
            content=BODY,
            headers={"content-type": "application/octet-stream, text/plain"},
        )
    )
    assert put.status_code == 200
    assert download(client, file_id).content == BODY
    assert client.request("GET", f"/api/v1/file/{file_id}/fetch").json()["name"] == "n.txt"


def test_multipart_and_raw_uploads(client: Client) -> None:
    file_id = new_file(client)
    resp = client.request(
        "POST", f"/api/v1/file/{file_id}/upload", files={"file": ("page.html", HTML, "text/html")}
    )
    assert resp.status_code == 200
    assert download(client, file_id).content == HTML
    raw_id = new_file(client)
    client.request(
        "POST",
        f"/api/v1/file/{raw_id}/upload",
        content=b"%PDF-1.4 x",
        headers={"Content-Type": "application/pdf"},
    )
    got = download(client, raw_id)
    assert got.content == b"%PDF-1.4 x" and got.headers["content-type"] == "application/pdf"


def test_url_upload_refuses_private_targets(client: Client) -> None:
    file_id = new_file(client)
    resp = client.request(
        "POST", f"/api/v1/file/{file_id}/upload", json={"file": "http://127.0.0.1:9/secret"}
    )
    assert resp.status_code == 400 and "not a public address" in resp.json()["message"]
    assert download(client, file_id).status_code == 204  # nothing stored


def test_path_uploads_are_not_for_http(client: Client, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("server-side secret")
    file_id = new_file(client)
    resp = client.request("POST", f"/api/v1/file/{file_id}/upload", json={"path": str(secret)})
    assert resp.status_code == 400 and resp.json()["details"][0]["pointer"] == "/path"
    assert download(client, file_id).status_code == 204


def test_no_content_is_204_and_404_as_json(client: Client) -> None:
    file_id = new_file(client)
    assert download(client, file_id).status_code == 204
    empty = download(client, file_id, Accept="application/json")
    assert empty.status_code == 404 and empty.json()["code"] == "NOT_FOUND"  # spec §7.4
    assert download(client, "missing", Accept="application/json").status_code == 404


def test_public_files_download_without_a_secret(client: Client) -> None:
    public, private = new_file(client, visibility="public"), new_file(client)
    for f in (public, private):
        client.request(
            "POST", f"/api/v1/file/{f}/upload", content=BODY, headers={"Content-Type": "text/plain"}
        )
    get = lambda f: client.loop.run_until_complete(client.http.get(f"/api/v1/file/{f}/download"))  # noqa: E731
    assert get(public).content == BODY
    assert get(private).status_code == 401


def test_oversized_uploads_are_refused_before_reading(
    tmp_path: Path, local_embedder: Embedder
) -> None:
    engine = Engine(Settings(home=tmp_path / "h", max_file_bytes=1000), embedder=local_embedder)
    client = Client(engine)
    try:
        file_id = new_file(client)
        declared = client.request(
            "POST",
            f"/api/v1/file/{file_id}/upload",
            json={"file": {"type": "", "size": 5000, "name": "big.bin"}},
        )
        assert declared.status_code == 429 and declared.json()["code"] == "LIMITS_REACHED"
        raw = client.request(
            "POST",
            f"/api/v1/file/{file_id}/upload",
            content=b"x" * 5000,
            headers={"Content-Type": "text/plain"},
        )
        assert raw.status_code == 429
        assert download(client, file_id).status_code == 204
    finally:
        client.close()
        engine.close()


class _Serve(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(HTML)

    def log_message(self, *args: object) -> None:
        pass


def test_url_upload_when_private_targets_are_allowed(
    tmp_path: Path, local_embedder: Embedder
) -> None:
    engine = Engine(Settings(home=tmp_path / "h", allow_private_urls=True), embedder=local_embedder)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Serve)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = Client(engine)
    try:
        file_id = new_file(client)
        url = f"http://127.0.0.1:{server.server_address[1]}/page.html"
        assert (
            client.request("POST", f"/api/v1/file/{file_id}/upload", json={"file": url}).status_code
            == 200
        )
        assert download(client, file_id).content == HTML
        assert client.request("GET", f"/api/v1/file/{file_id}/fetch").json()["name"] == "page.html"
    finally:
        client.close()
        server.shutdown()
        server.server_close()
        engine.close()

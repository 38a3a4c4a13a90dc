"""The five upload modes, downloads and signed content URLs over HTTP (in-process), on the local
and the S3 blob store."""

from __future__ import annotations

import base64
import hashlib
import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from openbotkit.engine import Engine
from openbotkit.models.providers import LLMProvider
from openbotkit.retrieval.embedders import Embedder
from openbotkit.services.worker import Worker
from openbotkit.settings import Settings
from openbotkit.store.tables import File
from tests.ingestion.samples import HTML
from tests.server.test_app import Client

BODY = b"The Zephyr-9 lifts 42 kilograms.\n"


@pytest.fixture
def engine(
    blob_settings: Callable[..., Settings], local_embedder: Embedder, local_llm: LLMProvider
) -> Iterator[Engine]:
    """The shared engine, on the local or the S3 blob store."""
    eng = Engine(blob_settings(), embedder=local_embedder, local_llms=[local_llm])
    yield eng
    eng.close()


@pytest.fixture
def client(engine: Engine) -> Iterator[Client]:
    c = Client(engine)
    yield c
    c.close()


def follow(client: Client, method: str, url: str, **kw: Any) -> httpx.Response:
    """Make a request a client was handed a URL for: to the API in-process, else over the
    network (the S3 store's own presigned URLs)."""
    if url.startswith("http://testserver/"):
        return client.loop.run_until_complete(client.http.request(method, url, **kw))
    return httpx.request(method, url, **kw)


def on_s3(engine: Engine) -> bool:
    return engine.settings.resolved_blob_url.startswith("s3://")


def new_file(client: Client, **fields: Any) -> str:
    return str(client.request("POST", "/api/v1/file/create", json=fields).json()["id"])


def download(client: Client, file_id: str, **headers: str) -> Any:
    return client.request("GET", f"/api/v1/file/{file_id}/download", headers=headers)


def test_data_url_upload_and_binary_download(client: Client, engine: Engine) -> None:
    file_id = new_file(client, name="facts.txt")
    data_url = "data:text/plain;base64," + base64.b64encode(BODY).decode()
    out = client.request("POST", f"/api/v1/file/{file_id}/upload", json={"file": data_url}).json()
    link = out["downloadRequest"]["url"]
    assert out["id"] == file_id and link.startswith("http://testserver/") != on_s3(engine)
    assert follow(client, "GET", link).content == BODY
    resp = download(client, file_id)  # no Accept: the bytes
    assert resp.content == BODY
    assert resp.headers["content-type"].startswith("text/plain")
    assert 'attachment; filename="facts.txt"' in resp.headers["content-disposition"]
    meta = client.request("GET", f"/api/v1/file/{file_id}/fetch").json()["meta"]
    assert meta == {"contentType": "text/plain"}


def test_download_with_json_accept_is_a_signed_url(client: Client, engine: Engine) -> None:
    file_id = new_file(client, name="a.txt")
    client.request(
        "POST",
        f"/api/v1/file/{file_id}/upload",
        content=BODY,
        headers={"Content-Type": "text/plain"},
    )
    url = download(client, file_id, Accept="application/json").json()["url"]
    anonymous = follow(client, "GET", url)
    assert anonymous.content == BODY  # the link itself is the authorization
    assert 'attachment; filename="a.txt"' in anonymous.headers["content-disposition"]
    assert anonymous.headers["content-type"].startswith("text/plain")
    if on_s3(engine):
        # The store's own link: the bytes do not pass through the API.
        query = parse_qs(urlsplit(url).query)
        assert url.startswith(engine.settings.aws_endpoint_url or "-")
        assert query["X-Amz-Expires"] == ["3600"] and "X-Amz-Signature" in query
        return
    assert "signature=" in url
    tampered = follow(client, "GET", url.replace("signature=", "signature=0"))
    assert tampered.status_code == 403


def test_direct_upload_with_the_node_sdks_joined_content_type(
    client: Client, engine: Engine
) -> None:
    file_id = new_file(client)
    out = client.request(
        "POST",
        f"/api/v1/file/{file_id}/upload",
        json={"file": {"type": "text/plain", "size": len(BODY), "name": "n.txt"}},
    ).json()
    req = out["uploadRequest"]
    assert req["method"] == "PUT"
    assert req["headers"]["content-type"] == "text/plain"
    assert req["headers"]["content-length"] == str(len(BODY))
    assert all(k == k.lower() for k in req["headers"])
    # On S3 the client PUTs straight to the store, with the API's server never involved.
    assert req["url"].startswith("http://testserver/") != on_s3(engine)
    put = follow(
        client,
        "PUT",
        req["url"],
        content=BODY,
        headers={"content-type": "application/octet-stream, text/plain"},
    )
    assert put.status_code == 200
    got = download(client, file_id)
    assert got.content == BODY and got.headers["content-type"].startswith("text/plain")
    fetched = client.request("GET", f"/api/v1/file/{file_id}/fetch").json()
    assert fetched["name"] == "n.txt" and fetched["meta"] == {"contentType": "text/plain"}
    info = download(client, file_id, Accept="application/json").json()
    assert follow(client, "GET", info["url"]).content == BODY


def test_direct_upload_is_no_content_until_the_put(client: Client, engine: Engine) -> None:
    file_id = new_file(client)
    client.request(
        "POST",
        f"/api/v1/file/{file_id}/upload",
        content=b"old",
        headers={"Content-Type": "text/plain"},
    )
    out = client.request(
        "POST",
        f"/api/v1/file/{file_id}/upload",
        json={"file": {"type": "text/plain", "size": len(BODY), "name": "n.txt"}},
    ).json()
    if on_s3(engine):  # a new direct upload replaces the content with what is PUT next
        assert download(client, file_id).status_code == 204
    else:  # the API's own PUT replaces it when it arrives
        assert download(client, file_id).content == b"old"
    follow(client, "PUT", out["uploadRequest"]["url"], content=BODY)
    assert download(client, file_id).content == BODY


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
    tmp_path: Path, local_embedder: Embedder, blob_settings: Callable[..., Settings]
) -> None:
    engine = Engine(
        blob_settings(home=tmp_path / "h", max_file_bytes=1000), embedder=local_embedder
    )
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
    tmp_path: Path, local_embedder: Embedder, blob_settings: Callable[..., Settings]
) -> None:
    engine = Engine(
        blob_settings(home=tmp_path / "h", allow_private_urls=True), embedder=local_embedder
    )
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


def test_sync_reads_a_direct_upload(client: Client, engine: Engine) -> None:
    """The worker completes a direct upload it is the first to use (on S3: a PUT to the store)."""
    file_id = new_file(client)
    out = client.request(
        "POST",
        f"/api/v1/file/{file_id}/upload",
        json={"file": {"type": "text/markdown", "size": len(BODY), "name": "z.md"}},
    ).json()
    assert follow(client, "PUT", out["uploadRequest"]["url"], content=BODY).status_code == 200
    ds = client.request("POST", "/api/v1/dataset/create", json={}).json()["id"]
    client.request("POST", f"/api/v1/dataset/{ds}/file/{file_id}/attach", json={"type": "source"})
    client.request("POST", f"/api/v1/file/{file_id}/sync", json={})
    job = Worker(engine.runtime).run_once()
    assert job is not None and job.status == "succeeded", job and job.error
    records = client.request("GET", f"/api/v1/dataset/{ds}/record/list").json()["items"]
    assert [r["text"] for r in records] == [BODY.decode().strip()]
    with engine.store.session(write=False) as session:
        stored = session.get(File, file_id)
        assert stored is not None and stored.size == len(BODY)


def test_an_oversized_direct_upload_never_becomes_content(
    tmp_path: Path, local_embedder: Embedder, blob_settings: Callable[..., Settings]
) -> None:
    """The API's PUT refuses the body; a store that took it anyway (one that does not check
    the signed Content-Length) sees it removed on first use."""
    engine = Engine(blob_settings(home=tmp_path / "h", max_file_bytes=10), embedder=local_embedder)
    client = Client(engine)
    try:
        file_id = new_file(client)
        out = client.request(
            "POST",
            f"/api/v1/file/{file_id}/upload",
            json={"file": {"type": "text/plain", "size": 5, "name": "a.txt"}},
        ).json()
        put = follow(client, "PUT", out["uploadRequest"]["url"], content=b"x" * 50)
        got = download(client, file_id)
        if on_s3(engine):
            assert put.status_code == 200  # moto does not hold the signed size against it
            assert got.status_code == 429 and "over the 10-byte limit" in got.json()["message"]
            assert engine.runtime.blobs.size(file_id) is None
        else:
            assert put.status_code == 429
        assert download(client, file_id).status_code == 204
    finally:
        client.close()
        engine.close()


def test_a_direct_upload_gets_its_hash_when_a_sync_first_reads_it(
    tmp_path: Path,
    local_embedder: Embedder,
    local_llm: LLMProvider,
    blob_settings: Callable[..., Settings],
) -> None:
    """Bytes PUT straight to the store are hashed by the sync that first reads them, so syncing
    the same bytes again is recognised as unchanged; new bytes of the same size are not."""
    settings = blob_settings(home=tmp_path / "h", sync_min_interval_s=0)
    engine = Engine(settings, embedder=local_embedder, local_llms=[local_llm])
    client = Client(engine)

    def put(file_id: str, body: bytes) -> None:
        out = client.request(
            "POST",
            f"/api/v1/file/{file_id}/upload",
            json={"file": {"type": "text/plain", "size": len(body), "name": "z.txt"}},
        ).json()
        assert follow(client, "PUT", out["uploadRequest"]["url"], content=body).status_code == 200

    def synced(file_id: str) -> dict[str, Any]:
        [job] = client.request("POST", f"/api/v1/file/{file_id}/sync", json={}).json()["jobs"]
        assert Worker(engine.runtime).run_once() is not None
        out: dict[str, Any] = client.request("GET", f"/api/v1/job/{job['id']}/fetch").json()
        assert out["status"] == "done", out
        return out

    def sha(file_id: str) -> str | None:
        with engine.store.session(write=False) as session:
            row = session.get(File, file_id)
            assert row is not None
            return row.sha256

    try:
        file_id = new_file(client)
        put(file_id, BODY)
        # On S3 no byte passed through the API (the local store's PUT is the API's own).
        assert (sha(file_id) is None) == on_s3(engine)
        ds = client.request("POST", "/api/v1/dataset/create", json={}).json()["id"]
        client.request(
            "POST", f"/api/v1/dataset/{ds}/file/{file_id}/attach", json={"type": "source"}
        )
        first = synced(file_id)
        assert (first["unchanged"], first["stats"]["added"]) == (False, 1)
        assert sha(file_id) == hashlib.sha256(BODY).hexdigest()
        again = synced(file_id)
        assert again["unchanged"] is True
        assert again["stats"] == {"kept": 1, "added": 0, "removed": 0}
        other = BODY.replace(b"42", b"43")  # same size, other bytes
        put(file_id, other)
        changed = synced(file_id)
        assert changed["unchanged"] is False and changed["stats"]["added"] == 1
        assert sha(file_id) == hashlib.sha256(other).hexdigest()
        assert synced(file_id)["unchanged"] is True
    finally:
        client.close()
        engine.close()

"""Requests that make the server fetch a URL, against a remote that drips a byte at a time, on
a real uvicorn: they run outside admission (an unrelated request is answered while they drip),
at most OBK_FETCHES_PER_ACCOUNT of one account's at once, each ended by the fetch deadline;
a completion's attachments are fetched outside the long lane, after the budget check, and an
attachment that is a parser bomb is refused naming it. The remote is on loopback, let through
by OBK_FETCH_ALLOW_HOSTS."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from openbotkit.engine import Engine
from openbotkit.retrieval.embedders import Embedder
from openbotkit.server.app import create_app
from openbotkit.services.secrets import create_secret
from openbotkit.settings import Settings
from tests.ingestion.remote import Drip, dripping_server
from tests.server.serving import serve_in_thread


@pytest.fixture
def drip() -> Iterator[Drip]:
    with dripping_server() as server:
        yield server


def _serve(tmp_path: Path, embedder: Embedder, drip: Drip, **settings: Any) -> Iterator[Any]:
    engine = Engine(
        Settings(home=tmp_path / "home", fetch_allow_hosts=drip.host, **settings),
        embedder=embedder,
    )
    token = create_secret(engine.runtime, "alice")[1]
    try:
        with (
            serve_in_thread(create_app(engine.settings, engine)) as origin,
            httpx.Client(
                base_url=origin + "/api/v1",
                headers={"Authorization": f"Bearer {token}"},
                timeout=60,
            ) as client,
        ):
            yield engine, client
    finally:
        engine.close()


@pytest.fixture
def served(tmp_path: Path, local_embedder: Embedder, drip: Drip) -> Iterator[Any]:
    yield from _serve(tmp_path, local_embedder, drip)


def _new_file(client: httpx.Client) -> str:
    return str(client.post("/file/create", json={}).json()["id"])


def test_dripping_uploads_leave_other_requests_answered(
    served: tuple[Engine, httpx.Client], drip: Drip
) -> None:
    """Three uploads by URL from one account, against a remote that drips until released: two
    are fetched at once (the account's share), the third waits its turn; meanwhile a list is
    answered, although the process admits only two requests at a time (SQLite's default)."""
    engine, client = served
    assert engine.settings.fetches_per_account == 2
    files = [_new_file(client) for _ in range(3)]
    with ThreadPoolExecutor(3) as pool:
        uploads = [
            pool.submit(client.post, f"/file/{f}/upload", json={"file": drip.url(f"/{i}.txt")})
            for i, f in enumerate(files)
        ]
        drip.wait_for(2)
        listed = client.get("/bot/list")
        assert listed.status_code == 200
        with drip.lock:
            assert drip.running == 2 and drip.finished == 0  # still dripping when answered
            assert len(drip.begun) == 2  # the third waits for one of the account's places
        drip.release.set()
        answers = [u.result(timeout=60) for u in uploads]
    assert [a.status_code for a in answers] == [200, 200, 200], [a.text for a in answers]
    assert drip.most_running == 2 and len(drip.begun) == 3
    for f in files:
        assert client.get(f"/file/{f}/download").content.endswith(b"the end\n")


def test_the_fetch_deadline_ends_a_dripping_upload(
    tmp_path: Path, local_embedder: Embedder, drip: Drip
) -> None:
    for _engine, client in _serve(tmp_path, local_embedder, drip, fetch_timeout_s=1):
        file_id = _new_file(client)
        resp = client.post(f"/file/{file_id}/upload", json={"file": drip.url("/slow.txt")})
        assert resp.status_code == 400, resp.text
        body = resp.json()
        assert "took longer than the 1 s allowed (OBK_FETCH_TIMEOUT_S)" in body["message"]
        assert client.get(f"/file/{file_id}/download").status_code == 204  # nothing stored
        assert not drip.release.is_set()  # ended by the deadline, not by the remote


@pytest.mark.parametrize("accept", ["application/jsonl", "application/json"])
def test_attachments_are_fetched_outside_the_long_lane(
    served: tuple[Engine, httpx.Client], drip: Drip, accept: str
) -> None:
    """A completion's attachment is fetched on the fetch lane's threads: the long lane (where
    generations run) has not started a thread while the attachment drips; the answer, streamed
    or whole, is generated there afterwards."""
    _engine, client = served
    body = {
        "messages": [{"type": "user", "text": "What does the note say?"}],
        "attachments": [{"url": drip.url("/note.txt")}],
        "model": "smollm2/maxTokens=4",
    }
    before = set(threading.enumerate())  # threads of apps of earlier tests may linger

    def started(prefix: str) -> list[str]:
        return [
            t.name for t in threading.enumerate() if t.name.startswith(prefix) and t not in before
        ]

    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(
            client.post, "/conversation/complete", json=body, headers={"Accept": accept}
        )
        drip.wait_for(1)
        assert started("obk-fetch") and not started("obk-long")
        drip.release.set()
        resp = answer.result(timeout=300)
    assert resp.status_code == 200, resp.text
    if accept == "application/json":
        assert resp.json()["end"]["reason"] in ("stop", "length")
    else:
        assert '"type":"result"' in resp.text.replace(" ", "")
    assert started("obk-long")


def test_a_spent_key_has_no_attachment_fetched(
    served: tuple[Engine, httpx.Client], drip: Drip
) -> None:
    """The budget is checked before any attachment is fetched or parsed."""
    engine, client = served
    token = create_secret(engine.runtime, "alice", budget_tokens=1)[1]
    headers = {"Authorization": f"Bearer {token}"}
    spend = {"messages": [{"type": "user", "text": "hi"}], "model": "smollm2/maxTokens=2"}
    client.post("/conversation/complete", json=spend, headers=headers)  # spends the one token
    body = {**spend, "attachments": [{"url": drip.url("/never.txt")}]}
    resp = client.post("/conversation/complete", json=body, headers=headers)
    assert resp.status_code == 402, resp.text
    assert drip.begun == []


class _Bomb(http.server.BaseHTTPRequestHandler):
    """`/ok.txt`: a line of text; anything else: `bomb`, as a file named by its path."""

    bomb = b""

    def do_GET(self) -> None:
        body = b"A short note." if self.path == "/ok.txt" else self.bomb
        self.send_response(200)
        self.send_header("Content-Type", "text/plain" if self.path == "/ok.txt" else "")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_an_attachment_bomb_is_invalid_input_naming_the_attachment(
    tmp_path: Path, local_embedder: Embedder
) -> None:
    """A DOCX that unpacks past the bound, attached second: refused before anything is
    unpacked, the error naming `/attachments/1` and the limit."""
    import io
    import zipfile

    packed = io.BytesIO()
    with (
        zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as bomb,
        bomb.open("word/document.xml", "w") as doc,
    ):
        for _ in range(8):
            doc.write(b"a" * (1 << 20))
    handler = type("H", (_Bomb,), {"bomb": packed.getvalue()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    engine = Engine(
        Settings(
            home=tmp_path / "home",
            fetch_allow_hosts=f"127.0.0.1:{port}",
            max_unpacked_bytes=4 * 1024 * 1024,
        ),
        embedder=local_embedder,
    )
    token = create_secret(engine.runtime, "alice")[1]
    try:
        with serve_in_thread(create_app(engine.settings, engine)) as origin:
            body = {
                "messages": [{"type": "user", "text": "hi"}],
                "attachments": [
                    {"url": f"http://127.0.0.1:{port}/ok.txt"},
                    {"url": f"http://127.0.0.1:{port}/bomb.docx"},
                ],
            }
            resp = httpx.post(
                origin + "/api/v1/conversation/complete",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
                timeout=60,
            )
    finally:
        server.shutdown()
        server.server_close()
        engine.close()
    assert resp.status_code == 400, resp.text
    error = resp.json()
    assert "bomb.docx" in error["message"] and "OBK_MAX_UNPACKED_BYTES" in error["message"]
    assert (
        "bomb.docx (/attachments/1) would become more than 4194304 bytes unpacked"
        in (error["message"])
    )

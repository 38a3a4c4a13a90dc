"""Request bodies are staged on disk before the action that uses them is authorized: every
refused, failed or invalid upload removes its staged body, and a server starting up removes
what ended processes left behind. Files the installation writes are its user's only."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from openbotkit.access import Effect
from openbotkit.engine import Engine
from openbotkit.ingestion.blobs import new_staged_file
from openbotkit.retrieval.embedders import Embedder
from openbotkit.server.app import create_app
from openbotkit.services.secrets import create_secret
from openbotkit.settings import Settings
from tests.server.serving import serve_in_thread
from tests.server.test_app import Client

BODY = b"x" * (2 * 1024 * 1024)


@pytest.fixture
def engine(tmp_path: Path, local_embedder: Embedder) -> Iterator[Engine]:
    made = Engine(Settings(home=tmp_path / "home"), embedder=local_embedder)
    yield made
    made.close()


async def _chunks(count: int) -> AsyncIterator[bytes]:
    """A body of no declared length (chunked), past the 25 MB limit."""
    for _ in range(count):
        yield BODY


def _staged(engine: Engine) -> list[str]:
    return sorted(p.name for p in engine.runtime.blobs.staging.iterdir())


def test_refused_uploads_leave_no_staged_files(engine: Engine) -> None:
    client = Client(engine)
    try:
        file_id = client.request("POST", "/api/v1/file/create", json={}).json()["id"]
        reader = create_secret(engine.runtime, "alice", scope=Effect.READ)[1]
        as_reader = {"Authorization": f"Bearer {reader}"}
        refused = [
            # A read-only key: refused by authorization, after the body was staged.
            client.request(
                "POST", f"/api/v1/file/{file_id}/upload", content=BODY,
                headers={**as_reader, "Content-Type": "text/plain"},
            ),
            client.request(
                "POST", f"/api/v1/file/{file_id}/upload",
                files={"file": ("a.txt", BODY, "text/plain")}, headers=as_reader,
            ),
            # No such file: refused by the action.
            client.request(
                "POST", "/api/v1/file/nofile/upload", content=BODY,
                headers={"Content-Type": "text/plain"},
            ),
            # A body past the limit, declared or not.
            client.request(
                "POST", f"/api/v1/file/{file_id}/upload", content=_chunks(14),
                headers={"Content-Type": "text/plain"},
            ),
        ]  # fmt: skip
        assert [r.status_code for r in refused] == [403, 403, 404, 429], [r.text for r in refused]
        assert _staged(engine) == []
        ok = client.request(
            "POST",
            f"/api/v1/file/{file_id}/upload",
            content=b"kept",
            headers={"Content-Type": "text/plain"},
        )
        assert ok.status_code == 200 and _staged(engine) == []
    finally:
        client.close()


def test_a_signed_put_that_fails_leaves_no_staged_file(engine: Engine) -> None:
    client = Client(engine)
    try:
        file_id = client.request("POST", "/api/v1/file/create", json={}).json()["id"]
        spec = {"file": {"type": "text/plain", "size": 4, "name": "a.txt"}}
        upload = client.request("POST", f"/api/v1/file/{file_id}/upload", json=spec).json()
        client.request("POST", f"/api/v1/file/{file_id}/delete", json={})
        put = upload["uploadRequest"]
        resp = client.loop.run_until_complete(
            client.http.put(put["url"], content=b"late", headers={"Content-Type": "text/plain"})
        )
        assert resp.status_code == 404, resp.text
        assert _staged(engine) == []
    finally:
        client.close()


def test_stale_staging_is_cleaned_at_start(engine: Engine) -> None:
    """Bodies of processes that have ended go when a server starts; those of a live process
    (another API process of the same `obk serve`), and recent files it cannot place, stay."""
    staging = engine.runtime.blobs.staging
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        own = new_staged_file(staging)
        dead = own.with_name(
            own.name.replace(f"obk-{os.getpid()}-", f"obk-{ended.stdout.strip()}-")
        )
        alive = own.with_name(own.name.replace(f"obk-{os.getpid()}-", f"obk-{live.pid}-"))
        old, recent = staging / "tmp-old", staging / "tmp-recent"
        for path in (dead, alive, old, recent):
            path.write_bytes(b"body")
        long_ago = time.time() - 2 * 3600
        os.utime(old, (long_ago, long_ago))
        with serve_in_thread(create_app(engine.settings, engine)) as origin:
            assert httpx.get(origin + "/healthz").status_code == 200
            assert sorted(_staged(engine)) == sorted([own.name, alive.name, recent.name])
    finally:
        live.kill()
        live.wait()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_home_the_database_and_the_blobs_are_the_users_only(engine: Engine) -> None:
    client = Client(engine)
    try:
        file_id = client.request("POST", "/api/v1/file/create", json={}).json()["id"]
        client.request(
            "POST",
            f"/api/v1/file/{file_id}/upload",
            content=b"private",
            headers={"Content-Type": "text/plain"},
        )
    finally:
        client.close()
    home = engine.settings.home
    database = home / "openbotkit.sqlite3"
    blobs = home / "blobs"
    (blob,) = [p for p in blobs.rglob("*") if p.is_file()]
    assert _mode(home) == 0o700
    assert _mode(database) == 0o600 and _mode(Path(f"{database}-wal")) == 0o600
    assert _mode(blobs) == 0o700 and _mode(blob.parent) == 0o700 and _mode(blob) == 0o600
    assert _mode(engine.runtime.blobs.staging) == 0o700

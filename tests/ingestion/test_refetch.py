"""Files from a URL are fetched again on sync, conditionally, from a real HTTP server on
loopback (private targets allowed in these tests' settings only)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest

from openbotkit.engine import Engine
from openbotkit.services.worker import Worker
from openbotkit.settings import Settings
from openbotkit.store.tables import File
from tests.ingestion.conftest import COUNTING, CountingEmbedder

pytestmark = pytest.mark.slow


@dataclass
class Remote:
    """What the loopback server serves, and the requests it saw: (validators sent, status)."""

    body: bytes = b"# Hours\n\nThe shop opens at 9am.\n\nIt closes at 6pm."
    version: int = 1
    use_etag: bool = True
    seen: list[tuple[dict[str, str], int]] = field(default_factory=list)

    @property
    def etag(self) -> str:
        return f'"v{self.version}"'

    @property
    def last_modified(self) -> str:
        return formatdate(1_700_000_000 + self.version * 3600, usegmt=True)


def serve(remote: Remote) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            sent = {
                k: v
                for k, v in self.headers.items()
                if k.lower() in ("if-none-match", "if-modified-since")
            }
            if remote.use_etag:
                fresh = self.headers.get("If-None-Match") == remote.etag
            else:
                fresh = self.headers.get("If-Modified-Since") == remote.last_modified
            if fresh:
                remote.seen.append((sent, 304))
                self.send_response(304)
                self.end_headers()
                return
            remote.seen.append((sent, 200))
            self.send_response(200)
            self.send_header("Content-Type", "text/markdown")
            self.send_header("Content-Length", str(len(remote.body)))
            if remote.use_etag:
                self.send_header("ETag", remote.etag)
            else:
                self.send_header("Last-Modified", remote.last_modified)
            self.end_headers()
            self.wfile.write(remote.body)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def remote() -> Iterator[tuple[Remote, str]]:
    state = Remote()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), serve(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/hours.md"
    server.shutdown()
    server.server_close()


def make_engine(home: Path, *, allow_private: bool = True) -> Engine:
    """An engine embedding with the counting embedder (the `counter` fixture registers it)."""
    settings = Settings(
        home=home, sync_min_interval_s=0, allow_private_urls=allow_private, embedder=COUNTING
    )
    return Engine(settings, local_paths=True)


def file_row(engine: Engine, file_id: str) -> File:
    with engine.store.session(write=False) as session:
        row = session.get(File, file_id)
        assert row is not None
        session.expunge(row)
        return row


def sync(engine: Engine, file_id: str) -> list[dict[str, Any]]:
    job_ids = [j["id"] for j in engine.execute("sync_file", {"fileId": file_id})["jobs"]]
    worker = Worker(engine.runtime)
    while worker.run_once() is not None:
        pass
    return [engine.execute("fetch_job", {"jobId": j}) for j in job_ids]


def texts(engine: Engine, dataset: str) -> list[str]:
    items = engine.execute("list_dataset_records", {"datasetId": dataset})["items"]
    return sorted(r["text"] for r in items)


@pytest.mark.parametrize("use_etag", [True, False], ids=["etag", "last-modified"])
def test_unchanged_remote_costs_one_conditional_request(
    tmp_path: Path, remote: tuple[Remote, str], counter: CountingEmbedder, use_etag: bool
) -> None:
    state, url = remote
    state.use_etag = use_etag
    engine = make_engine(tmp_path / "home")
    file_id = engine.execute("create_file", {})["id"]
    engine.execute("upload_file", {"fileId": file_id, "file": url})
    row = file_row(engine, file_id)
    assert row.source_url == url and row.name == "hours.md"
    assert (row.etag, row.last_modified) == (
        (state.etag, None) if use_etag else (None, state.last_modified)
    )
    datasets = [engine.execute("create_dataset", {})["id"] for _ in range(2)]
    for ds in datasets:
        engine.execute(
            "attach_dataset_file", {"datasetId": ds, "fileId": file_id, "type": "source"}
        )
    first = sync(engine, file_id)
    assert [j["status"] for j in first] == ["done", "done"], [j.get("error") for j in first]
    assert texts(engine, datasets[0]) == texts(engine, datasets[1]) != []
    validator = (
        {"If-None-Match": state.etag} if use_etag else {"If-Modified-Since": state.last_modified}
    )
    # Upload, then one conditional request for both datasets' jobs.
    assert state.seen == [({}, 200), (validator, 304)]

    state.seen.clear()
    counter.texts.clear()
    again = sync(engine, file_id)
    assert [(j["status"], j["unchanged"]) for j in again] == [("done", True), ("done", True)]
    assert state.seen == [(validator, 304)]  # one request, nothing downloaded
    assert counter.texts == []  # nothing embedded

    state.seen.clear()
    state.version, state.body = 2, b"# Hours\n\nThe shop opens at 10am.\n\nIt closes at 6pm."
    changed = sync(engine, file_id)
    assert [j["unchanged"] for j in changed] == [False, False]
    assert [status for _, status in state.seen] == [200]
    assert all("10am" in t for t in texts(engine, datasets[0]))
    row = file_row(engine, file_id)
    assert (row.etag or row.last_modified) in (state.etag, state.last_modified)
    assert row.size == len(state.body)
    downloaded = tmp_path / "copy.md"
    engine.execute("download_file", {"fileId": file_id, "path": str(downloaded)})
    assert downloaded.read_bytes() == state.body
    engine.close()


def test_dry_run_of_a_url_file_reads_the_remote_and_stores_nothing(
    tmp_path: Path, remote: tuple[Remote, str], counter: CountingEmbedder
) -> None:
    state, url = remote
    engine = make_engine(tmp_path / "home")
    file_id = engine.execute("create_file", {})["id"]
    engine.execute("upload_file", {"fileId": file_id, "file": url})
    ds = engine.execute("create_dataset", {})["id"]
    engine.execute("attach_dataset_file", {"datasetId": ds, "fileId": file_id, "type": "source"})
    sync(engine, file_id)
    out = engine.execute("sync_file", {"fileId": file_id, "dryRun": True})
    assert out["diffs"][0]["unchanged"] is True and state.seen[-1][1] == 304
    before = file_row(engine, file_id)
    state.version, state.body = 2, b"# Hours\n\nClosed on Sundays."
    out = engine.execute("sync_file", {"fileId": file_id, "dryRun": True})
    assert state.seen[-1][1] == 200
    assert out["diff"]["added"] == 1 and out["diff"]["removed"] == 1
    assert out["diff"]["changed"][0]["after"] == "Hours\nClosed on Sundays."
    after = file_row(engine, file_id)
    assert (after.sha256, after.etag, after.fetched_at) == (
        before.sha256,
        before.etag,
        before.fetched_at,
    )
    assert all("Sundays" not in t for t in texts(engine, ds))
    engine.close()


def test_refetch_keeps_the_ssrf_guard(
    tmp_path: Path, remote: tuple[Remote, str], counter: CountingEmbedder
) -> None:
    """A file fetched while private targets were allowed is not fetched again once they are
    not: the job fails, saying why, and the records stay as they were."""
    state, url = remote
    home = tmp_path / "home"
    allowed = make_engine(home)
    file_id = allowed.execute("create_file", {})["id"]
    allowed.execute("upload_file", {"fileId": file_id, "file": url})
    ds = allowed.execute("create_dataset", {})["id"]
    allowed.execute("attach_dataset_file", {"datasetId": ds, "fileId": file_id, "type": "source"})
    sync(allowed, file_id)
    kept = texts(allowed, ds)
    allowed.close()
    seen = len(state.seen)
    guarded = make_engine(home, allow_private=False)
    [job] = sync(guarded, file_id)
    assert job["status"] == "failed" and "OBK_ALLOW_PRIVATE_URLS" in job["error"]
    assert len(state.seen) == seen  # refused before connecting
    assert texts(guarded, ds) == kept
    guarded.close()

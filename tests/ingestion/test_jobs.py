"""Sync jobs end to end: attach, sync, worker, records; failures; a worker killed mid-job."""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from openbotkit.engine import Engine
from openbotkit.errors import InvalidInput, NotFound, RateLimited
from openbotkit.ingestion import jobs
from openbotkit.retrieval.embedders import Embedder
from openbotkit.services.worker import Worker
from openbotkit.settings import Settings
from openbotkit.store.tables import Job, Record
from tests.ingestion.samples import MARKDOWN, docx_bytes, pdf_bytes

OBK = shutil.which("obk", path=str(Path(sys.executable).parent)) or "obk"


def upload(engine: Engine, tmp_path: Path, name: str, data: bytes) -> str:
    file_id = engine.execute("create_file", {"name": name})["id"]
    content = "data:application/octet-stream;base64," + base64.b64encode(data).decode()
    engine.execute("upload_file", {"fileId": file_id, "file": content})
    return file_id


@pytest.fixture
def quick_engine(
    local_embedder: Embedder, blob_settings: Callable[..., Settings]
) -> Iterator[Engine]:
    """No sync rate limit, so tests can re-sync at once; the test's database, and the local or
    the S3 blob store."""
    eng = Engine(blob_settings(sync_min_interval_s=0), embedder=local_embedder)
    yield eng
    eng.close()


def texts(engine: Engine, dataset: str) -> list[str]:
    return [
        r["text"] for r in engine.execute("list_dataset_records", {"datasetId": dataset})["items"]
    ]


@pytest.mark.parametrize(
    ("name", "data", "question", "expected"),
    [
        ("manual.md", MARKDOWN, "How often should the sensors be cleaned?", "dry cloth"),
        (
            "specs.pdf",
            pdf_bytes(["Intro page.", "The Zephyr-9 lifts 42 kilograms."]),
            "payload of the Zephyr-9",
            "42 kilograms",
        ),
        (
            "policy.docx",
            docx_bytes("Returns", ["Robots can be returned within 30 days."]),
            "return window for robots",
            "30 days",
        ),
    ],
)
def test_sync_makes_searchable_records(
    quick_engine: Engine, tmp_path: Path, name: str, data: bytes, question: str, expected: str
) -> None:
    engine = quick_engine
    ds = engine.execute("create_dataset", {})["id"]
    file_id = upload(engine, tmp_path, name, data)
    engine.execute("attach_dataset_file", {"datasetId": ds, "fileId": file_id, "type": "source"})
    out = engine.execute("sync_file", {"fileId": file_id})
    assert out["id"] == file_id and out["jobs"][0]["status"] == "queued"
    job = Worker(engine.runtime).run_once()
    assert job is not None and job.status == "succeeded" and job.records
    found = engine.execute("search_dataset", {"datasetId": ds, "search": question})["records"]
    assert expected in found[0]["text"]
    assert found[0]["source"] == f"file:///{file_id}"
    assert found[0]["meta"]["fileName"] == name


def test_resync_replaces_the_files_records(quick_engine: Engine, tmp_path: Path) -> None:
    engine = quick_engine
    ds = engine.execute("create_dataset", {})["id"]
    engine.execute("create_dataset_record", {"datasetId": ds, "text": "A record of its own."})
    file_id = upload(engine, tmp_path, "notes.md", b"# Notes\nThe first version.")
    engine.execute("attach_dataset_file", {"datasetId": ds, "fileId": file_id, "type": "source"})
    engine.execute("sync_dataset_file", {"datasetId": ds, "fileId": file_id})
    Worker(engine.runtime).run_once()
    second = base64.b64encode(b"# Notes\nThe second version.").decode()
    engine.execute(
        "upload_file", {"fileId": file_id, "file": f"data:text/markdown;base64,{second}"}
    )
    engine.execute("sync_file", {"fileId": file_id})
    Worker(engine.runtime).run_once()
    assert sorted(texts(engine, ds)) == ["A record of its own.", "Notes\nThe second version."]


def test_unreadable_file_fails_with_a_message_and_writes_nothing(
    quick_engine: Engine, tmp_path: Path
) -> None:
    engine = quick_engine
    ds = engine.execute("create_dataset", {})["id"]
    file_id = upload(engine, tmp_path, "broken.pdf", b"%PDF-1.4 not really")
    engine.execute("attach_dataset_file", {"datasetId": ds, "fileId": file_id, "type": "source"})
    engine.execute("sync_file", {"fileId": file_id})
    job = Worker(engine.runtime).run_once()
    assert job is not None and job.status == "failed" and "broken.pdf" in (job.error or "")
    assert texts(engine, ds) == []


def test_a_parser_bomb_fails_its_job_and_its_dry_run_and_keeps_the_records(
    local_embedder: Embedder, tmp_path: Path
) -> None:
    """A file whose parse passes OBK_MAX_PARSED_CHARS: the dry run is invalid_input naming the
    file and the bound, the job fails without retrying, and the records of the last good sync
    stay."""
    engine = Engine(
        Settings(home=tmp_path / "home", sync_min_interval_s=0, max_parsed_chars=5_000),
        embedder=local_embedder,
    )
    try:
        ds = engine.execute("create_dataset", {})["id"]
        file_id = upload(engine, tmp_path, "rows.csv", b"name,size\nZephyr-9,42 kg\n")
        engine.execute(
            "attach_dataset_file", {"datasetId": ds, "fileId": file_id, "type": "source"}
        )
        engine.execute("sync_file", {"fileId": file_id})
        assert Worker(engine.runtime).run_once().status == "succeeded"  # type: ignore[union-attr]
        header = ",".join(f"column{i}" + "x" * 100 for i in range(20))
        bomb = header + "\n" + ("a," * 19 + "a\n") * 30  # 2 KB a row once written out
        engine.execute("upload_file", {"fileId": file_id, "file": _data_url(bomb.encode())})
        with pytest.raises(
            InvalidInput, match=r"rows\.csv \(/fileId\) would become more than 5000"
        ):
            engine.execute("sync_file", {"fileId": file_id, "dryRun": True})
        engine.execute("sync_file", {"fileId": file_id})
        job = Worker(engine.runtime).run_once()
        assert job is not None and job.status == "failed" and job.attempts == 1
        assert "OBK_MAX_PARSED_CHARS" in (job.error or "")
        assert texts(engine, ds) == ["name: Zephyr-9; size: 42 kg"]
    finally:
        engine.close()


def _data_url(data: bytes) -> str:
    return "data:text/csv;base64," + base64.b64encode(data).decode()


def test_sync_rules(engine: Engine, tmp_path: Path) -> None:
    ds = engine.execute("create_dataset", {})["id"]
    file_id = upload(engine, tmp_path, "a.txt", b"text")
    assert engine.execute("sync_file", {"fileId": file_id})["jobs"] == []  # unattached: no-op
    with pytest.raises(NotFound):
        engine.execute("sync_dataset_file", {"datasetId": ds, "fileId": file_id})
    engine.execute("attach_dataset_file", {"datasetId": ds, "fileId": file_id, "type": "source"})
    engine.execute("sync_file", {"fileId": file_id})
    with pytest.raises(RateLimited, match="OBK_SYNC_MIN_INTERVAL_S"):
        engine.execute("sync_file", {"fileId": file_id})


def test_detach_with_delete_records_removes_exactly_that_files_records(
    quick_engine: Engine, tmp_path: Path
) -> None:
    engine = quick_engine
    ds = engine.execute("create_dataset", {})["id"]
    engine.execute("create_dataset_record", {"datasetId": ds, "text": "Keep me."})
    a = upload(engine, tmp_path, "a.md", b"# A\nFrom file a.")
    b = upload(engine, tmp_path, "b.md", b"# B\nFrom file b.")
    for f in (a, b):
        engine.execute("attach_dataset_file", {"datasetId": ds, "fileId": f, "type": "source"})
        engine.execute("sync_file", {"fileId": f})
    worker = Worker(engine.runtime)
    while worker.run_once():
        pass
    assert engine.execute("list_dataset_files", {"datasetId": ds})["items"][0]["id"] in (a, b)
    out = engine.execute(
        "detach_dataset_file", {"datasetId": ds, "fileId": a, "deleteRecords": True}
    )
    assert out["deletedRecords"] == 1
    assert sorted(texts(engine, ds)) == ["B\nFrom file b.", "Keep me."]
    assert [f["id"] for f in engine.execute("list_dataset_files", {"datasetId": ds})["items"]] == [
        b
    ]


def test_worker_killed_mid_sync_is_resumed_with_exactly_the_right_records(
    settings: Settings, tmp_path: Path, local_embedder: Embedder
) -> None:
    home = settings.home
    engine = Engine(
        settings.model_copy(update={"sync_min_interval_s": 0, "job_lease_s": 2}),
        embedder=local_embedder,
    )
    ds = engine.execute("create_dataset", {"recordMaxTokens": 40})["id"]
    paragraphs = [
        f"Section {i}: robot model {i} carries {i + 10} kilograms of cargo." for i in range(400)
    ]
    file_id = upload(engine, tmp_path, "big.md", "\n\n".join(paragraphs).encode())
    engine.execute("attach_dataset_file", {"datasetId": ds, "fileId": file_id, "type": "source"})
    engine.execute("sync_file", {"fileId": file_id})

    env = {**os.environ, "OBK_HOME": str(home), "OBK_JOB_LEASE_S": "2", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [OBK, "worker", "--poll", "0.2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            with engine.store.session(write=False) as session:
                job = session.scalars(select(Job)).one()
                if job.stage == "embed" and job.progress_done > 0:
                    break
            time.sleep(0.05)
        else:
            pytest.fail("the worker never reached the embed stage")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    with engine.store.session(write=False) as session:
        assert session.scalar(select(func.count()).select_from(Record)) == 0  # nothing half-written
    time.sleep(2.2)  # the dead worker's lease runs out
    job = Worker(engine.runtime).run_once()
    assert job is not None and job.status == "succeeded" and job.attempts == 2
    with engine.store.session(write=False) as session:
        stored = session.scalars(select(Record.text)).all()
    assert len(stored) == len(set(stored)) == job.records
    joined = "\n".join(stored)
    assert all(p in joined for p in paragraphs)
    engine.close()


def _queued_job(engine: Engine) -> Job:
    ds = engine.execute("create_dataset", {})["id"]
    file_id = upload(engine, Path(), "a.md", b"# A\nSome text.")
    engine.execute("attach_dataset_file", {"datasetId": ds, "fileId": file_id, "type": "source"})
    engine.execute("sync_file", {"fileId": file_id})
    with engine.store.session(write=False) as session:
        return session.scalars(select(Job)).one()


def test_a_job_that_kills_every_worker_fails_after_max_attempts(quick_engine: Engine) -> None:
    """Each claim whose lease then runs out (the worker died) is an attempt; after the last
    one the job is failed, not handed to yet another worker."""
    engine = quick_engine
    queued = _queued_job(engine)
    now, lease = int(time.time() * 1000), 1_000
    for attempt in range(1, queued.max_attempts + 1):
        with engine.store.session() as session:
            claimed = jobs.claim_next_job(session, f"doomed-{attempt}", now, lease)
            assert claimed is not None and claimed.attempts == attempt
        now += lease + 1  # that worker died: its lease runs out
    with engine.store.session() as session:
        assert jobs.claim_next_job(session, "another", now, lease) is None
    with engine.store.session(write=False) as session:
        job = session.get(Job, queued.id)
        assert job is not None and job.status == "failed" and "lease expired" in (job.error or "")
        assert job.attempts == job.max_attempts


def test_a_worker_that_lost_its_lease_cannot_complete_or_fail_the_job(
    quick_engine: Engine,
) -> None:
    engine = quick_engine
    _queued_job(engine)
    now, lease = int(time.time() * 1000), 1_000
    with engine.store.session() as session:
        first = jobs.claim_next_job(session, "slow", now, lease)
        assert first is not None
        session.expunge(first)
    with engine.store.session() as session:  # the lease ran out; another worker took over
        second = jobs.claim_next_job(session, "fast", now + lease + 1, lease)
        assert second is not None and second.attempts == 2
        session.expunge(second)
    with engine.store.session() as session:
        assert not jobs.progress(session, first, "slow", "embed", 1, 2, lease)
        assert jobs.fail(session, first, "slow", "late failure", retry=False) is None
        assert not jobs.finish(session, first, "slow", 99)
    # Even a worker that reuses its id is fenced by the attempt number.
    with engine.store.session() as session:
        stale = Job(id=second.id, attempts=1)
        assert not jobs.finish(session, stale, "fast", 99)
    with engine.store.session() as session:
        assert jobs.finish(session, second, "fast", 3)
    with engine.store.session(write=False) as session:
        job = session.get(Job, second.id)
        assert job is not None and job.status == "succeeded" and job.records == 3
        assert job.error is None


def test_a_long_stage_keeps_its_lease(tmp_path: Path, local_embedder: Embedder) -> None:
    """While a stage runs three times longer than the lease, no other worker can claim the
    job; once the stage ends, renewal stops."""
    engine = Engine(
        Settings(home=tmp_path / "home", sync_min_interval_s=0, job_lease_s=0.6),
        embedder=local_embedder,
    )
    _queued_job(engine)
    worker = Worker(engine.runtime, "long")
    with engine.store.session() as session:
        job = jobs.claim_next_job(session, "long", int(time.time() * 1000), worker.lease_ms)
        assert job is not None
        session.expunge(job)
    with worker._lease_kept(job):
        time.sleep(1.8)  # a slow parse, say
        with engine.store.session() as session:
            assert jobs.claim_next_job(session, "thief", int(time.time() * 1000), 600) is None
    time.sleep(0.8)
    with engine.store.session() as session:
        taken = jobs.claim_next_job(session, "thief", int(time.time() * 1000), 600)
        assert taken is not None and taken.attempts == 2
    engine.close()

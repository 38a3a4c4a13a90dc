"""Re-sync that does only what changed, with the real embedder (counted, not replaced)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from openbotkit.engine import Engine
from openbotkit.retrieval.embedders import Embedder
from openbotkit.services.worker import Worker
from openbotkit.settings import Settings
from openbotkit.store.tables import DatasetFile, Job, Record, RecordVector
from tests.ingestion.conftest import COUNTING, CountingEmbedder
from tests.ingestion.test_jobs import OBK, upload

pytestmark = pytest.mark.slow


PARAGRAPHS = [
    "The Zephyr-9 warehouse robot carries at most 42 kilograms on its top plate.",
    "Its battery lasts eleven hours and recharges fully in ninety minutes at the dock.",
    "The lidar sensors should be wiped with a dry cloth once every week.",
    "Firmware updates arrive over the air every second Tuesday of the month.",
    "A red ring of light means the robot has stopped because something blocks its path.",
]


def document(paragraphs: list[str]) -> bytes:
    return "\n\n".join(paragraphs).encode()


class Setup:
    """A dataset with a Markdown file synced into it, one record per paragraph."""

    def __init__(self, tmp_path: Path, counter: CountingEmbedder) -> None:
        self.tmp_path = tmp_path
        self.counter = counter
        settings = Settings(home=tmp_path / "home", sync_min_interval_s=0, embedder=COUNTING)
        self.engine = Engine(settings, local_paths=True)
        self.dataset = self.run("create_dataset", {"recordMaxTokens": 24})["id"]
        self.file = upload(self.engine, tmp_path, "manual.md", document(PARAGRAPHS))
        self.run(
            "attach_dataset_file",
            {"datasetId": self.dataset, "fileId": self.file, "type": "source"},
        )
        self.sync()

    def run(self, name: str, data: dict[str, Any]) -> dict[str, Any]:
        return self.engine.execute(name, data)

    def replace_content(self, paragraphs: list[str]) -> None:
        path = self.tmp_path / "manual.md"
        path.write_bytes(document(paragraphs))
        self.run("upload_file", {"fileId": self.file, "path": str(path)})

    def sync(self) -> dict[str, Any]:
        """Sync the file, run the job, and answer the job as fetch_job shows it."""
        job_id = self.run("sync_file", {"fileId": self.file})["jobs"][0]["id"]
        assert Worker(self.engine.runtime).run_once() is not None
        return self.run("fetch_job", {"jobId": job_id})

    def records(self) -> dict[str, str]:
        """Record id -> text, for the dataset."""
        items = self.run("list_dataset_records", {"datasetId": self.dataset})["items"]
        return {r["id"]: r["text"] for r in items}


@pytest.fixture
def synced(tmp_path: Path, counter: CountingEmbedder) -> Setup:
    setup = Setup(tmp_path, counter)
    assert sorted(setup.records().values()) == sorted(PARAGRAPHS)  # one record per paragraph
    setup.counter.texts.clear()
    return setup


def test_unchanged_file_finishes_at_once_with_zero_embeddings(synced: Setup) -> None:
    before = synced.records()
    job = synced.sync()
    assert job["status"] == "done" and job["stage"] == "done" and job["unchanged"] is True
    assert job["stats"] == {"kept": len(PARAGRAPHS), "added": 0, "removed": 0}
    assert synced.counter.texts == []
    assert synced.records() == before


def test_one_edited_paragraph_re_embeds_only_its_chunk(synced: Setup) -> None:
    before = synced.records()
    edited = list(PARAGRAPHS)
    edited[2] = "The lidar sensors should be wiped with a soft brush once every month."
    synced.replace_content(edited)
    job = synced.sync()
    assert job["status"] == "done" and job["unchanged"] is False
    assert job["stats"] == {"kept": 4, "added": 1, "removed": 1}
    assert synced.counter.texts == [edited[2]]
    after = synced.records()
    assert sorted(after.values()) == sorted(edited)
    unchanged_ids = {rid for rid, text in before.items() if text != PARAGRAPHS[2]}
    assert unchanged_ids < set(after)  # kept their ids
    assert next(rid for rid, text in after.items() if text == edited[2]) not in before
    found = synced.run("search_dataset", {"datasetId": synced.dataset, "search": "soft brush"})
    assert found["records"][0]["text"] == edited[2]
    with synced.engine.store.session(write=False) as session:
        vectors = session.scalars(
            select(RecordVector.record_id).where(RecordVector.dataset_id == synced.dataset)
        ).all()
    assert sorted(vectors) == sorted(after)  # every record has exactly one vector


def test_moved_and_removed_paragraphs_keep_their_records_and_positions(synced: Setup) -> None:
    before = {text: rid for rid, text in synced.records().items()}
    reordered = [PARAGRAPHS[4], PARAGRAPHS[0], PARAGRAPHS[1], PARAGRAPHS[3]]
    synced.replace_content(reordered)
    job = synced.sync()
    assert job["stats"] == {"kept": 4, "added": 0, "removed": 1}
    assert synced.counter.texts == []
    items = synced.run("list_dataset_records", {"datasetId": synced.dataset})["items"]
    assert {r["text"]: r["id"] for r in items} == {t: before[t] for t in reordered}
    assert {r["text"]: r["meta"]["chunk"] for r in items} == {t: i for i, t in enumerate(reordered)}


def test_dry_run_answers_the_diff_and_changes_nothing(synced: Setup) -> None:
    edited = [*PARAGRAPHS[:4], "A green ring of light means the robot is charging."]
    synced.replace_content(edited)
    records_before = synced.records()
    jobs_before = synced.run("list_jobs", {})["items"]
    with synced.engine.store.session(write=False) as session:
        link = session.scalars(select(DatasetFile)).one()
        synced_before = (link.synced_sha256, link.synced_records, link.synced_at)
    for action, ref in (
        ("sync_file", {"fileId": synced.file}),
        ("sync_dataset_file", {"fileId": synced.file, "datasetId": synced.dataset}),
    ):
        out = synced.run(action, {**ref, "dryRun": True})
        assert out["id"] == synced.file and out["jobs"] == []
        assert out["diff"] == {
            "added": 1,
            "removed": 1,
            "kept": 4,
            "changed": [{"chunk": 4, "before": PARAGRAPHS[4], "after": edited[4]}],
        }
        assert [d["datasetId"] for d in out["diffs"]] == [synced.dataset]
        assert out["diffs"][0]["unchanged"] is False
    assert synced.counter.texts == []  # parsed and chunked, never embedded
    assert synced.records() == records_before
    assert synced.run("list_jobs", {})["items"] == jobs_before
    with synced.engine.store.session(write=False) as session:
        link = session.scalars(select(DatasetFile)).one()
        assert (link.synced_sha256, link.synced_records, link.synced_at) == synced_before
    # The sync then does what the dry run said.
    assert synced.sync()["stats"] == {"kept": 4, "added": 1, "removed": 1}
    out = synced.run("sync_file", {"fileId": synced.file, "dryRun": True})
    assert out["diffs"][0]["unchanged"] is True
    assert out["diff"] == {"added": 0, "removed": 0, "kept": 5, "changed": []}


def test_changed_chunk_settings_re_chunk_an_unchanged_file(synced: Setup) -> None:
    synced.run("update_dataset", {"datasetId": synced.dataset, "recordMaxTokens": 200})
    job = synced.sync()
    assert job["unchanged"] is False and job["stats"]["added"] >= 1
    assert len(synced.records()) < len(PARAGRAPHS)  # paragraphs now share records


def test_records_deleted_by_hand_are_made_again_and_only_they(synced: Setup) -> None:
    victim = next(rid for rid, text in synced.records().items() if text == PARAGRAPHS[1])
    synced.run("delete_dataset_record", {"datasetId": synced.dataset, "recordId": victim})
    job = synced.sync()
    assert job["unchanged"] is False
    assert job["stats"] == {"kept": 4, "added": 1, "removed": 0}
    assert synced.counter.texts == [PARAGRAPHS[1]]
    assert sorted(synced.records().values()) == sorted(PARAGRAPHS)


def test_worker_killed_during_a_diff_sync_loses_nothing(
    tmp_path: Path, local_embedder: Embedder
) -> None:
    home = tmp_path / "home"
    engine = Engine(
        Settings(home=home, sync_min_interval_s=0, job_lease_s=2),
        embedder=local_embedder,
        local_paths=True,
    )
    ds = engine.execute("create_dataset", {"recordMaxTokens": 24})["id"]
    paragraphs = [
        f"Section {i}: robot model {i} carries {i + 10} kilograms of cargo across the floor."
        for i in range(300)
    ]
    file_id = upload(engine, tmp_path, "big.md", "\n\n".join(paragraphs).encode())
    engine.execute("attach_dataset_file", {"datasetId": ds, "fileId": file_id, "type": "source"})
    engine.execute("sync_file", {"fileId": file_id})
    assert Worker(engine.runtime).run_once() is not None  # one record per paragraph

    def snapshot() -> dict[str, str]:
        with engine.store.session(write=False) as session:
            return {r.id: r.text for r in session.scalars(select(Record))}

    before = snapshot()
    assert sorted(before.values()) == sorted(paragraphs)
    edited = [p.replace("carries", "lifts") if i % 2 else p for i, p in enumerate(paragraphs)]
    upload_path = tmp_path / "big.md"
    upload_path.write_text("\n\n".join(edited))
    engine.execute("upload_file", {"fileId": file_id, "path": str(upload_path)})
    job_id = engine.execute("sync_file", {"fileId": file_id})["jobs"][0]["id"]

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
                job = session.get(Job, job_id)
                assert job is not None and job.status != "succeeded", "the worker was too quick"
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
    assert snapshot() == before  # nothing half-written: every old record, id and text
    time.sleep(2.2)  # the dead worker's lease runs out
    assert Worker(engine.runtime).run_once() is not None
    out = engine.execute("fetch_job", {"jobId": job_id})
    assert out["status"] == "done" and out["attempts"] == 2
    assert out["stats"] == {"kept": 150, "added": 150, "removed": 150}
    after = snapshot()
    assert sorted(after.values()) == sorted(edited)
    kept_ids = {rid for rid, text in before.items() if "carries" in text and text in edited}
    assert len(kept_ids) == 150 and kept_ids <= set(after)
    engine.close()

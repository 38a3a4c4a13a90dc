"""The job view: fetch_job and list_jobs, scoped to the account, with the public statuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from openbotkit.actions.jobs import JobOutput
from openbotkit.engine import Engine
from openbotkit.errors import InvalidInput, NotFound
from openbotkit.services.worker import Worker
from openbotkit.settings import Settings

# The keys every job has: its published schema's required ones (`error`, optional, appears only
# once an attempt failed). Defined once here; the REST contract test checks the same.
JOB_KEYS = set(JobOutput.model_json_schema(by_alias=True)["required"])


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    """Queueing and failing jobs needs no model: an engine without the bundled ones."""
    return Engine(Settings(home=tmp_path / "home", sync_min_interval_s=0), local_paths=True)


def alice(engine: Engine, name: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    return engine.execute(name, data, account="alice")


def queued_sync(engine: Engine, tmp_path: Path, alias: str) -> tuple[str, str, str]:
    """A file attached to a new dataset and synced (queued): file id, dataset id, job id."""
    file_id = alice(engine, "create_file", {"name": f"{alias}.txt", "alias": alias})["id"]
    path = tmp_path / f"{alias}.txt"
    path.write_text(f"Text of {alias}.")
    alice(engine, "upload_file", {"fileId": file_id, "path": str(path)})
    ds = alice(engine, "create_dataset", {})["id"]
    alice(engine, "attach_dataset_file", {"datasetId": ds, "fileId": file_id, "type": "source"})
    [job] = alice(engine, "sync_file", {"fileId": file_id})["jobs"]
    return file_id, ds, job["id"]


def test_fetch_job_answers_the_public_shape(engine: Engine, tmp_path: Path) -> None:
    file_id, ds, job_id = queued_sync(engine, tmp_path, "a")
    job = alice(engine, "fetch_job", {"jobId": job_id})
    assert set(job) == JOB_KEYS  # `error` only once an attempt failed
    assert (job["id"], job["fileId"], job["datasetId"]) == (job_id, file_id, ds)
    assert (job["status"], job["stage"], job["attempts"], job["unchanged"]) == (
        "queued",
        "queued",
        0,
        False,
    )
    assert job["progress"] == {"done": 0, "total": 0}
    assert job["stats"] == {"kept": 0, "added": 0, "removed": 0}
    assert job["createdAt"] == job["updatedAt"] > 0


def test_a_failed_job_reads_failed_with_its_error(engine: Engine, tmp_path: Path) -> None:
    file_id, ds, job_id = queued_sync(engine, tmp_path, "a")
    alice(engine, "detach_dataset_file", {"datasetId": ds, "fileId": file_id})
    assert Worker(engine.runtime).run_once() is not None
    job = alice(engine, "fetch_job", {"jobId": job_id})
    assert (job["status"], job["stage"], job["attempts"]) == ("failed", "failed", 1)
    assert job["error"] == "the file is no longer attached to the dataset"


def test_list_jobs_filters_by_file_dataset_and_status(engine: Engine, tmp_path: Path) -> None:
    b_file, b_ds, b_job = queued_sync(engine, tmp_path, "b")
    alice(engine, "detach_dataset_file", {"datasetId": b_ds, "fileId": b_file})
    Worker(engine.runtime).run_once()  # b's job fails (detached)
    a_file, _a_ds, a_job = queued_sync(engine, tmp_path, "a")

    def ids(**filters: Any) -> list[str]:
        return [j["id"] for j in alice(engine, "list_jobs", filters)["items"]]

    statuses = {j["id"]: j["status"] for j in alice(engine, "list_jobs")["items"]}
    assert statuses == {a_job: "queued", b_job: "failed"}
    assert ids(fileId=a_file) == [a_job] == ids(fileId="@a")
    assert ids(datasetId=b_ds) == [b_job]
    assert ids(fileId=a_file, datasetId=b_ds) == []
    for status in ("queued", "running", "done", "failed"):
        assert ids(status=status) == [j for j, s in statuses.items() if s == status]
    with pytest.raises(InvalidInput, match="/status"):
        alice(engine, "list_jobs", {"status": "succeeded"})
    with pytest.raises(NotFound, match="fileId"):
        alice(engine, "list_jobs", {"fileId": "@nope"})


def test_list_jobs_pages_newest_first_with_a_cursor(engine: Engine, tmp_path: Path) -> None:
    made = [queued_sync(engine, tmp_path, name)[2] for name in ("a", "b", "c")]
    first = alice(engine, "list_jobs", {"take": 2})
    second = alice(engine, "list_jobs", {"take": 2, "cursor": first["cursor"]})
    assert [j["id"] for j in first["items"] + second["items"]] == made[::-1]
    assert second["cursor"] == ""
    oldest = alice(engine, "list_jobs", {"order": "asc", "take": 1})
    assert [j["id"] for j in oldest["items"]] == made[:1]


def test_another_accounts_job_is_not_found(engine: Engine, tmp_path: Path) -> None:
    file_id, _ds, job_id = queued_sync(engine, tmp_path, "a")
    with pytest.raises(NotFound, match="jobId"):
        engine.execute("fetch_job", {"jobId": job_id}, account="bob")
    assert engine.execute("list_jobs", {}, account="bob")["items"] == []
    assert engine.execute("list_jobs", {"fileId": file_id}, account="bob")["items"] == []
    with pytest.raises(NotFound):
        engine.execute("list_jobs", {"fileId": "@a"}, account="bob")

"""The job view (an openbotkit extension): the background sync jobs of the caller's account,
so a client can follow a sync it started (`sync_file` answers the job ids)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from openbotkit.actions.base import Input, ListInput, ListOutput, Output, Timestamp
from openbotkit.actions.registry import Effect, action
from openbotkit.services import jobs
from openbotkit.services.context import Ctx
from openbotkit.store.tables import Job

JobStatus = Literal["queued", "running", "done", "failed"]


class JobProgress(Output):
    done: int = Field(description="Chunks embedded so far in the current stage.")
    total: int = Field(description="Chunks the stage has to embed (0 while unknown).")


class JobStats(Output):
    kept: int = Field(description="Records whose text was unchanged: id and vector kept.")
    added: int = Field(description="Records made from new or changed chunks (embedded).")
    removed: int = Field(description="Records of chunks that are gone.")


class JobOutput(Output):
    id: str
    file_id: str
    dataset_id: str
    status: JobStatus = Field(description="queued, running, done or failed.")
    stage: str = Field(description="queued, fetch, parse, chunk, embed, index, done or failed.")
    progress: JobProgress
    stats: JobStats = Field(description="What the sync did; zeros until it is done.")
    unchanged: bool = Field(description="True when the content had not changed: nothing to do.")
    error: str | None = Field(None, description="Why the last attempt failed.")
    attempts: int = Field(description="Attempts started so far (failed ones are retried).")
    created_at: Timestamp
    updated_at: Timestamp


def job_output(job: Job | Mapping[str, Any]) -> JobOutput:
    """The public view of a job row (an ORM row, or a page's column dict)."""
    row = job if isinstance(job, Mapping) else {c.key: getattr(job, c.key) for c in Job.__table__.c}
    return JobOutput(
        id=row["id"],
        file_id=row["file_id"],
        dataset_id=row["dataset_id"],
        status=jobs.PUBLIC_STATUS[row["status"]],
        stage=row["stage"],
        progress=JobProgress(done=row["progress_done"], total=row["progress_total"]),
        stats=JobStats(kept=row["kept"] or 0, added=row["added"] or 0, removed=row["removed"] or 0),
        unchanged=bool(row["unchanged"]),
        error=row["error"],
        attempts=row["attempts"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class JobRef(Input):
    job_id: str = Field(description="Job id, as sync_file or sync_dataset_file answered it.")


class ListJobsInput(ListInput):
    file_id: str | None = Field(None, description="Only this file's jobs (id or @alias).")
    dataset_id: str | None = Field(None, description="Only jobs into this dataset (id or @alias).")
    status: JobStatus | None = Field(None, description="Only jobs with this status.")


@action("fetch_job", Effect.READ, "GET /job/{jobId}/fetch")
def fetch_job(ctx: Ctx, inp: JobRef) -> JobOutput:
    """Fetch one background job: status, stage, progress and what it changed."""
    return job_output(jobs.get(ctx, inp.job_id))


@action("list_jobs", Effect.READ, "GET /job/list")
def list_jobs(ctx: Ctx, inp: ListJobsInput) -> ListOutput[JobOutput]:
    """List background jobs, newest first, by file, dataset or status."""
    rows, cursor = jobs.page(
        ctx, inp, file_ref=inp.file_id, dataset_ref=inp.dataset_id, status=inp.status
    )
    return ListOutput[JobOutput](items=[job_output(r) for r in rows], cursor=cursor)

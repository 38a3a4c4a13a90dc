"""Background jobs as an account sees them: its own sync jobs, by id or as a filtered page."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement

from openbotkit.errors import NotFound, Problem
from openbotkit.ingestion.jobs import SYNC
from openbotkit.services import crud, datasets, files
from openbotkit.services.context import Ctx
from openbotkit.services.crud import PageRequest
from openbotkit.store.tables import Job

# The queue's own statuses -> the four the API promises. A job waiting to be retried after a
# failed attempt is queued again; `succeeded` reads as `done`.
PUBLIC_STATUS = {"queued": "queued", "running": "running", "succeeded": "done", "failed": "failed"}
STORED_STATUS = {public: stored for stored, public in PUBLIC_STATUS.items()}


def get(ctx: Ctx, job_id: str) -> Job:
    """The caller's sync job; another account's job is not found. Jobs of other kinds (a chat
    channel's answers) are the queue's own business: their outcome shows on the integration."""
    job = crud.get_owned(ctx, Job, job_id, field="jobId")
    if job.kind != SYNC:
        raise NotFound(
            f"job {job_id!r} not found (field jobId)",
            details=[Problem("/jobId", "exists", f"job {job_id!r} not found")],
        )
    return job


def page(
    ctx: Ctx,
    request: PageRequest,
    *,
    file_ref: str | None = None,
    dataset_ref: str | None = None,
    status: str | None = None,
) -> tuple[list[dict[str, Any]], str]:
    """A page of the caller's jobs, newest first, filtered by file, dataset and public status.

    An `@alias` filter names the caller's file or dataset (not found if there is none); a plain
    id is taken as given, so the jobs of a file deleted since still show up.
    """
    where: list[ColumnElement[bool]] = [Job.kind == SYNC]
    if file_ref:
        file_id = files.get(ctx, file_ref).id if file_ref.startswith("@") else file_ref
        where.append(Job.file_id == file_id)
    if dataset_ref:
        dataset_id = (
            datasets.get(ctx, dataset_ref).id if dataset_ref.startswith("@") else dataset_ref
        )
        where.append(Job.dataset_id == dataset_id)
    if status:
        where.append(Job.status == STORED_STATUS[status])
    return crud.page(ctx, Job, request, where=where)

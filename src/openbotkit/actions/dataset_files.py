"""Dataset file attachments (spec §6)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy import select

from openbotkit.actions.base import Input, ListInput, ListOutput, Output
from openbotkit.actions.file_content import (
    SyncOutput,
    diff_summary,
    job_summary,
    may_fetch,
    sync_effect,
)
from openbotkit.actions.files import FileOutput
from openbotkit.actions.registry import Effect, action
from openbotkit.services import crud, dataset_files, datasets
from openbotkit.services.context import Ctx
from openbotkit.store.tables import DatasetFile, File


class DatasetFileRef(Input):
    dataset_id: str = Field(description="Dataset id, or @alias.")
    file_id: str = Field(description="File id, or @alias.")


class AttachInput(DatasetFileRef):
    type: Literal["source"] = Field(description="How the file is used; only 'source'.")


class DetachInput(DatasetFileRef):
    delete_records: bool = Field(False, description="Also delete the records made from the file.")


class AttachmentOutput(Output):
    id: str
    dataset_id: str
    type: str
    deleted_records: int | None = None


class ListDatasetFilesInput(ListInput):
    dataset_id: str = Field(description="Dataset id, or @alias.")


@action("list_dataset_files", Effect.READ, "GET /dataset/{datasetId}/file/list")
def list_dataset_files(ctx: Ctx, inp: ListDatasetFilesInput) -> ListOutput[FileOutput]:
    """List the files attached to a dataset."""
    dataset = datasets.get(ctx, inp.dataset_id)
    attached = select(DatasetFile.file_id).where(DatasetFile.dataset_id == dataset.id)
    rows, cursor = crud.page(ctx, File, inp, where=[File.id.in_(attached)])
    return ListOutput[FileOutput](items=rows, cursor=cursor)


@action("attach_dataset_file", Effect.WRITE, "POST /dataset/{datasetId}/file/{fileId}/attach")
def attach_dataset_file(ctx: Ctx, inp: AttachInput) -> AttachmentOutput:
    """Attach a file to a dataset as a source of records (sync imports it)."""
    link = dataset_files.attach(ctx, inp.dataset_id, inp.file_id, inp.type)
    return AttachmentOutput(id=link.file_id, dataset_id=link.dataset_id, type=link.type)


def _detach_effect(inp: BaseModel) -> Effect:
    assert isinstance(inp, DetachInput)
    return Effect.DESTRUCTIVE if inp.delete_records else Effect.WRITE


@action(
    "detach_dataset_file",
    _detach_effect,
    "POST /dataset/{datasetId}/file/{fileId}/detach",
    effect_note="write; destructive when deleteRecords is true",
)
def detach_dataset_file(ctx: Ctx, inp: DetachInput) -> AttachmentOutput:
    """Detach a file from a dataset; deleteRecords also deletes the records made from it."""
    link, deleted = dataset_files.detach(ctx, inp.dataset_id, inp.file_id, inp.delete_records)
    return AttachmentOutput(
        id=link.file_id,
        dataset_id=link.dataset_id,
        type=link.type,
        deleted_records=deleted if inp.delete_records else None,
    )


class SyncDatasetFileInput(DatasetFileRef):
    dry_run: bool = Field(
        False,
        description="Only answer what a sync would change (parsed and chunked, nothing written).",
    )


@action(
    "sync_dataset_file",
    sync_effect,
    "POST /dataset/{datasetId}/file/{fileId}/sync",
    effect_note="write; read when dryRun is true",
    strongest_effect=Effect.WRITE,
    fetches=may_fetch,
)
def sync_dataset_file(ctx: Ctx, inp: SyncDatasetFileInput) -> SyncOutput:
    """Re-import one attached file into this dataset, in the background."""
    if inp.dry_run:
        diff = dataset_files.preview_dataset_file(ctx, inp.dataset_id, inp.file_id)
        total, each = diff_summary([diff])
        return SyncOutput(id=diff.file_id, jobs=[], diff=total, diffs=each)
    job = dataset_files.sync_dataset_file(ctx, inp.dataset_id, inp.file_id)
    return SyncOutput(id=job.file_id, jobs=[job_summary(job)])

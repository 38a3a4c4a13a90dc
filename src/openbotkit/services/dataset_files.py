"""Files attached to datasets, and syncing them into records through durable jobs."""

from __future__ import annotations

from sqlalchemy import select

from openbotkit.errors import NotFound, Problem, RateLimited
from openbotkit.ids import now_ms
from openbotkit.ingestion import jobs
from openbotkit.services import datasets, files, records, resync
from openbotkit.services.context import Ctx
from openbotkit.services.resync import Diff, source_of
from openbotkit.store.tables import DatasetFile, File, Job


def attach(ctx: Ctx, dataset_ref: str, file_ref: str, kind: str) -> DatasetFile:
    """Attach (or re-attach, replacing the type); importing is what sync does."""
    dataset, file = datasets.get(ctx, dataset_ref), files.get(ctx, file_ref)
    link = ctx.session.get(DatasetFile, (dataset.id, file.id))
    now = now_ms()
    if link is None:
        link = DatasetFile(
            dataset_id=dataset.id,
            file_id=file.id,
            account_id=ctx.account_id,
            type=kind,
            created_at=now,
            updated_at=now,
        )
        ctx.session.add(link)
    else:
        link.type, link.updated_at = kind, now
    ctx.session.flush()
    return link


def _attachment(ctx: Ctx, dataset_ref: str, file_ref: str) -> DatasetFile:
    dataset, file = datasets.get(ctx, dataset_ref), files.get(ctx, file_ref)
    link = ctx.session.get(DatasetFile, (dataset.id, file.id))
    if link is None:
        raise NotFound(
            f"file {file.id} is not attached to dataset {dataset.id}",
            details=[Problem("/fileId", "attached", "attach the file first")],
        )
    return link


def detach(
    ctx: Ctx, dataset_ref: str, file_ref: str, delete_records: bool
) -> tuple[DatasetFile, int]:
    """Detach a file; with `delete_records`, also delete exactly the records made from it."""
    link = _attachment(ctx, dataset_ref, file_ref)
    deleted = 0
    if delete_records:
        dataset = datasets.get(ctx, link.dataset_id)
        deleted = records.delete_by_source(ctx, dataset, source_of(link.file_id))
    ctx.session.delete(link)
    ctx.session.flush()
    return link, deleted


def _check_rate(ctx: Ctx, file_id: str, dataset_id: str | None) -> None:
    interval_ms = int(ctx.settings.sync_min_interval_s * 1000)
    if interval_ms <= 0:
        return
    query = select(Job.created_at).where(Job.account_id == ctx.account_id, Job.file_id == file_id)
    if dataset_id:
        query = query.where(Job.dataset_id == dataset_id)
    last = ctx.session.scalar(query.order_by(Job.created_at.desc()).limit(1))
    if last is not None and now_ms() - last < interval_ms:
        wait = (interval_ms - (now_ms() - last)) // 1000 + 1
        raise RateLimited(
            f"file {file_id} was synced less than {ctx.settings.sync_min_interval_s:g} s ago; "
            f"try again in {wait} s (OBK_SYNC_MIN_INTERVAL_S)"
        )


def _links(ctx: Ctx, file: File) -> list[DatasetFile]:
    return list(
        ctx.session.scalars(
            select(DatasetFile)
            .where(DatasetFile.account_id == ctx.account_id, DatasetFile.file_id == file.id)
            .order_by(DatasetFile.created_at, DatasetFile.dataset_id)
        )
    )


def sync_file(ctx: Ctx, file_ref: str) -> tuple[File, list[Job]]:
    """Queue an import of the file into every dataset it is attached to (none: nothing to do)."""
    file = files.get(ctx, file_ref)
    _check_rate(ctx, file.id, None)
    return file, [
        jobs.enqueue_sync(ctx.session, ctx.account_id, file.id, link.dataset_id)
        for link in _links(ctx, file)
    ]


def preview_file(ctx: Ctx, file_ref: str) -> tuple[File, list[Diff]]:
    """What syncing the file would change in each dataset it is attached to; changes nothing
    (no rate limit: nothing is queued)."""
    file = files.get(ctx, file_ref)
    return file, [resync.preview(ctx, link) for link in _links(ctx, file)]


def sync_dataset_file(ctx: Ctx, dataset_ref: str, file_ref: str) -> Job:
    link = _attachment(ctx, dataset_ref, file_ref)
    _check_rate(ctx, link.file_id, link.dataset_id)
    return jobs.enqueue_sync(ctx.session, ctx.account_id, link.file_id, link.dataset_id)


def preview_dataset_file(ctx: Ctx, dataset_ref: str, file_ref: str) -> Diff:
    """What syncing one attached file into this dataset would change; changes nothing."""
    return resync.preview(ctx, _attachment(ctx, dataset_ref, file_ref))

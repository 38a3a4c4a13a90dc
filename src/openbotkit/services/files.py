"""File metadata. Content (upload, download) is handled by services/file_content.py."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import event

from openbotkit.errors import ProviderError
from openbotkit.ingestion.blobs import BlobStore
from openbotkit.services import crud
from openbotkit.services.context import Ctx
from openbotkit.store.tables import File

log = logging.getLogger("openbotkit.files")


def delete_content(blobs: BlobStore, file_id: str) -> None:
    """Remove a file's content once its row is gone for good. Runs after the commit, so a
    store that fails now (S3 unreachable) leaves an orphan behind, logged, not an error."""
    try:
        blobs.delete(file_id)
    except ProviderError as exc:
        log.warning("file %s: content not deleted: %s", file_id, exc.message)


def create(ctx: Ctx, fields: dict[str, Any]) -> File:
    crud.check_alias_free(ctx, File, fields.get("alias"))
    return crud.insert(ctx, File, fields)


def get(ctx: Ctx, ref: str) -> File:
    return crud.get_owned(ctx, File, ref, field="fileId")


def update(ctx: Ctx, ref: str, fields: dict[str, Any]) -> File:
    file = get(ctx, ref)
    crud.check_alias_free(ctx, File, fields.get("alias"), own_id=file.id)
    crud.update(ctx, file, fields)
    return file


def delete(ctx: Ctx, ref: str) -> str:
    """Delete a file's metadata and attachments; records synced from it stay in their datasets."""
    file = get(ctx, ref)
    ctx.session.delete(file)
    ctx.session.flush()
    # The content goes only once the row is gone for good: never a row without its blob.
    file_id, blobs = file.id, ctx.runtime.blobs
    event.listen(ctx.session, "after_commit", lambda _s: delete_content(blobs, file_id), once=True)
    return file.id

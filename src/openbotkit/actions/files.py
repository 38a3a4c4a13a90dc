"""File metadata actions (spec §7.1–7.2). Content actions live in actions/file_content.py."""

from __future__ import annotations

from pydantic import Field

from openbotkit.actions.base import (
    Alias,
    IdOutput,
    Input,
    ListInput,
    ListOutput,
    Meta,
    MetaFilterMixin,
    Resource,
    Visibility,
)
from openbotkit.actions.registry import Effect, action
from openbotkit.services import crud, files
from openbotkit.services.context import Ctx
from openbotkit.store.tables import File


class FileFields(Input):
    alias: Alias = None
    name: str | None = None
    description: str | None = None
    meta: Meta = None
    blueprint_id: str | None = None
    visibility: Visibility | None = Field(None, description="public files download without auth.")


class FileRef(Input):
    file_id: str = Field(description="File id, or @alias.")


class CreateFileInput(FileFields):
    pass


class UpdateFileInput(FileFields, FileRef):
    pass


class ListFilesInput(ListInput, MetaFilterMixin):
    blueprint_id: str | None = None


class FileOutput(Resource):
    alias: str | None = None
    name: str | None = None
    description: str | None = None
    meta: dict[str, object] | None = None
    blueprint_id: str | None = None
    visibility: Visibility | None = None


@action("list_files", Effect.READ, "GET /file/list")
def list_files(ctx: Ctx, inp: ListFilesInput) -> ListOutput[FileOutput]:
    """List files, newest first, optionally filtered by meta."""
    rows, cursor = crud.page(ctx, File, inp)
    return ListOutput[FileOutput](items=rows, cursor=cursor)


@action("fetch_file", Effect.READ, "GET /file/{fileId}/fetch")
def fetch_file(ctx: Ctx, inp: FileRef) -> FileOutput:
    """Fetch one file's metadata."""
    return FileOutput.model_validate(files.get(ctx, inp.file_id))


@action("create_file", Effect.WRITE, "POST /file/create")
def create_file(ctx: Ctx, inp: CreateFileInput) -> IdOutput:
    """Create a file record; its content comes with upload_file."""
    return IdOutput(id=files.create(ctx, inp.set_fields()).id)


@action("update_file", Effect.WRITE, "POST /file/{fileId}/update", idempotent=True)
def update_file(ctx: Ctx, inp: UpdateFileInput) -> IdOutput:
    """Change the given fields of a file; null clears a field."""
    return IdOutput(id=files.update(ctx, inp.file_id, inp.set_fields(exclude={"file_id"})).id)


@action("delete_file", Effect.DESTRUCTIVE, "POST /file/{fileId}/delete")
def delete_file(ctx: Ctx, inp: FileRef) -> IdOutput:
    """Delete a file, its content and its dataset attachments."""
    return IdOutput(id=files.delete(ctx, inp.file_id))

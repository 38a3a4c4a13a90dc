"""File content actions (spec §7.3–7.5): upload, download, sync."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from openbotkit.actions.base import MAX_INT, Input, LocalPath, Output, no_null_default
from openbotkit.actions.registry import Effect, action
from openbotkit.errors import InvalidInput, NotFound, Problem
from openbotkit.ingestion.diff import CHANGED_SHOWN
from openbotkit.localfiles import target_in
from openbotkit.services import dataset_files, file_content, files
from openbotkit.services.context import AccountScope, Ctx
from openbotkit.services.resync import Diff
from openbotkit.store.tables import Job

if TYPE_CHECKING:
    from openbotkit.ingestion.fetch import Fetched


class UploadSpec(Input):
    """Direct upload: describe the file, then PUT its bytes to the returned `uploadRequest`."""

    type: str = Field(description="Content type; '' to guess it from the name.")
    size: Annotated[int, Field(ge=0, le=MAX_INT)]
    name: str | None = None


class UploadFileInput(Input):
    # Over HTTP `path` does not exist, so a JSON body must give `file`.
    model_config = ConfigDict(json_schema_extra={"x-http-required": ["file"]})

    file_id: str = Field(description="File id, or @alias.")
    file: (
        Annotated[str, Field(pattern=r"^(https?://|data:)")] | UploadSpec | SkipJsonSchema[None]
    ) = Field(
        None,
        json_schema_extra=no_null_default,
        description=(
            "An http(s) URL to fetch, a data: URL, or {type, size, name} for a direct upload."
            " Multipart and raw bodies are accepted by the server too."
        ),
    )
    path: LocalPath = Field(None, description="A local file to upload (local connector only).")
    type: str | None = Field(None, description="Content type of `path` (guessed if omitted).")
    name: str | None = Field(None, description="File name to record.")


class HttpRequestSpec(Output):
    method: str
    url: str
    headers: dict[str, str]


class UploadFileOutput(Output):
    id: str
    upload_request: HttpRequestSpec | None = None
    download_request: HttpRequestSpec | None = None


def _api_content_url(ctx: Ctx, verb: str, file_id: str) -> str:
    params = file_content.sign(ctx.runtime.url_key, verb, file_id, ctx.account_id)
    query = "&".join(f"{k}={v}" for k, v in params.items())
    # Relative: the server makes it absolute with the address the client used.
    return f"/api/v1/file/{file_id}/content?{query}"


def _download_url(ctx: Ctx, file_id: str) -> str:
    """The blob store's own signed link when it has one (bytes bypass the API), else ours."""
    file = files.get(ctx, file_id)
    return file_content.store_download_url(ctx, file) or _api_content_url(ctx, "get", file_id)


def _local_source(scope: AccountScope, path: str) -> tuple[Path, bool]:
    """The file a `path` names and whether it may be moved: a body this server staged itself
    (moved in), else a file on this machine (copied; the engine admits it only where local
    files are allowed)."""
    given = Path(path)
    return given, scope.runtime.blobs.claim_staged(given)


def fetches_url(inp: UploadFileInput) -> bool:
    """The upload's content comes from an http(s) URL the server fetches."""
    return isinstance(inp.file, str) and inp.file.startswith(("http://", "https://"))


def may_fetch(inp: BaseModel) -> bool:
    """A dry run reads the file's content now: from its URL, for a file that came from one."""
    return bool(getattr(inp, "dry_run", False))


@action(
    "upload_file",
    Effect.WRITE,
    "POST /file/{fileId}/upload",
    open_world=True,
    own_transactions=True,
    fetches=fetches_url,
)
def upload_file(scope: AccountScope, inp: UploadFileInput) -> UploadFileOutput:
    """Give a file its content: from a URL, a data: URL, a local path, or a direct upload."""
    if (inp.file is None) == (inp.path is None):
        raise InvalidInput(
            "give exactly one of `file` (URL, data: URL or {type, size, name}) and `path`",
            details=[Problem("/file", "one_of", "file or path")],
        )
    source: tuple[Path, bool] | None = None
    origin: Fetched | None = None
    ctype, name = inp.type, inp.name
    if inp.path is not None:
        source = _local_source(scope, inp.path)
    elif isinstance(inp.file, str) and inp.file.startswith(("http://", "https://")):
        with scope.transaction(write=False) as ctx:
            files.get(ctx, inp.file_id)  # not found before any network traffic
        # Fetched with no transaction open: a slow server must not hold the write lock.
        staged = file_content.fetch_url(scope.runtime, inp.file)
        source, ctype, name = (staged.path, True), staged.content_type, name or staged.name
        origin = staged.origin
    try:
        with scope.transaction() as ctx:
            return _upload(ctx, inp, source, ctype, name, origin)
    finally:
        if source is not None and source[1]:
            scope.runtime.blobs.release_staged(source[0])  # gone already when it was used


def _upload(
    ctx: Ctx,
    inp: UploadFileInput,
    source: tuple[Path, bool] | None,
    ctype: str | None,
    name: str | None,
    origin: Fetched | None,
) -> UploadFileOutput:
    file_id = files.get(ctx, inp.file_id).id
    upload = None
    if source is not None:
        file_content.store_path(ctx, file_id, source[0], ctype, name, move=source[1], origin=origin)
    elif isinstance(inp.file, UploadSpec):
        file_content.check_size(ctx.settings, inp.file.size)
        ctype = file_content.guess_type(inp.file.name, inp.file.type)
        headers = {"content-length": str(inp.file.size), "content-type": ctype}
        if inp.file.name:
            headers["content-disposition"] = f"attachment; filename={quote(inp.file.name)}"
            if not files.get(ctx, file_id).name:
                files.update(ctx, file_id, {"name": inp.file.name})
        signed = file_content.direct_upload(ctx, file_id, inp.file.size, ctype, inp.file.name)
        if signed is not None:
            headers.update(signed.headers)
        url = signed.url if signed is not None else _api_content_url(ctx, "put", file_id)
        upload = HttpRequestSpec(method="PUT", url=url, headers=headers)
    elif inp.file is not None and inp.file.startswith("data:"):
        file_content.store_data_url(ctx, file_id, inp.file, inp.name)
    else:
        raise InvalidInput(
            "`file` must be an http(s) URL, a data: URL, or {type, size, name}",
            details=[Problem("/file", "format", "unsupported file reference")],
        )
    download = HttpRequestSpec(method="GET", url=_download_url(ctx, file_id), headers={})
    return UploadFileOutput(id=file_id, upload_request=upload, download_request=download)


NO_CONTENT = "has_content"  # the rule of the not_found a download of an empty file raises


class DownloadFileInput(Input):
    file_id: str = Field(description="File id, or @alias.")
    path: LocalPath = Field(None, description="Write the content here (local connector only).")


class DownloadFileOutput(Output):
    id: str
    url: str = Field(description="A signed, expiring link to the content.")
    name: str | None = None
    content_type: str | None = None
    size: int | None = None
    path: str | None = None


@action("download_file", Effect.READ, "GET /file/{fileId}/download")
def download_file(ctx: Ctx, inp: DownloadFileInput) -> DownloadFileOutput:
    """Get a file's content: a signed link, the bytes (server), or a local copy (`path`)."""
    file, found = file_content.content(ctx, inp.file_id)
    if found is None:
        # Spec §7.4: no content is a 404 for the JSON form (the binary form answers 204).
        raise NotFound(
            f"file {file.id} has no content yet: upload it first",
            details=[Problem("/fileId", NO_CONTENT, "the file has no content")],
        )
    out = DownloadFileOutput(id=file.id, url=_download_url(ctx, file.id), name=file.name)
    out.content_type, out.size = found.content_type, found.size
    if inp.path is not None:
        reader = ctx.runtime.blobs.open(file.id)
        if reader is None:  # removed since `content` looked
            raise NotFound(
                f"file {file.id} has no content yet: upload it first",
                details=[Problem("/fileId", NO_CONTENT, "the file has no content")],
            )
        target = Path(inp.path)
        if target.is_dir():
            target = target_in(target, found.name, f"{file.id}.bin")
        try:
            with target.open("wb") as copy:
                shutil.copyfileobj(reader, copy)
        finally:
            reader.close()
        out.path = str(target)
    return out


class SyncJob(Output):
    id: str
    dataset_id: str
    status: str


def job_summary(job: Job) -> SyncJob:
    return SyncJob(id=job.id, dataset_id=job.dataset_id, status=job.status)


class ChangedChunk(Output):
    chunk: int | None = Field(None, description="Position of the new chunk in the file.")
    before: str | None = Field(None, description="The text that goes (absent: an addition).")
    after: str | None = Field(None, description="The text that comes (absent: a removal).")


class SyncDiff(Output):
    added: int = Field(description="Chunks that would be embedded and added as records.")
    removed: int = Field(description="Records whose chunk is gone, that would be deleted.")
    kept: int = Field(description="Records whose text is unchanged: id and vector kept.")
    changed: list[ChangedChunk] = Field(description="The first few changed places.")


class DatasetSyncDiff(SyncDiff):
    dataset_id: str
    unchanged: bool = Field(description="The content and settings are as last synced.")


def diff_summary(diffs: list[Diff]) -> tuple[SyncDiff, list[DatasetSyncDiff]]:
    """The dry run's answer: totals over the datasets, and each dataset's own diff."""
    each = [
        DatasetSyncDiff(
            dataset_id=d.dataset_id,
            added=d.added,
            removed=d.removed,
            kept=d.kept,
            unchanged=d.unchanged,
            changed=[
                ChangedChunk(chunk=c.chunk, before=c.before, after=c.after) for c in d.changed
            ],
        )
        for d in diffs
    ]
    total = SyncDiff(
        added=sum(d.added for d in each),
        removed=sum(d.removed for d in each),
        kept=sum(d.kept for d in each),
        changed=[c for d in each for c in d.changed][:CHANGED_SHOWN],
    )
    return total, each


class SyncFileInput(Input):
    file_id: str = Field(description="File id, or @alias.")
    dry_run: bool = Field(
        False,
        description="Only answer what a sync would change (parsed and chunked, nothing written).",
    )


class SyncOutput(Output):
    id: str
    jobs: list[SyncJob] = Field(description="openbotkit extension: the queued import jobs.")
    diff: SyncDiff | None = Field(None, description="With dryRun: what a sync would change.")
    diffs: list[DatasetSyncDiff] | None = Field(
        None, description="With dryRun: the same per dataset the file is attached to."
    )


def sync_effect(inp: BaseModel) -> Effect:
    """A dry run only reads."""
    return Effect.READ if getattr(inp, "dry_run", False) else Effect.WRITE


@action(
    "sync_file",
    sync_effect,
    "POST /file/{fileId}/sync",
    effect_note="write; read when dryRun is true",
    strongest_effect=Effect.WRITE,
    fetches=may_fetch,
)
def sync_file(ctx: Ctx, inp: SyncFileInput) -> SyncOutput:
    """Re-import a file into every dataset it is attached to, in the background."""
    if inp.dry_run:
        file, diffs = dataset_files.preview_file(ctx, inp.file_id)
        total, each = diff_summary(diffs)
        return SyncOutput(id=file.id, jobs=[], diff=total, diffs=each)
    file, queued = dataset_files.sync_file(ctx, inp.file_id)
    return SyncOutput(id=file.id, jobs=[job_summary(j) for j in queued])

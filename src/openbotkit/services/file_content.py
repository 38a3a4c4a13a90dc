"""File content: upload (from bytes, a local path, a URL or a data: URL), download, and the
signed URLs that let a client PUT or GET content without an API secret."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import mimetypes
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote_to_bytes

from sqlalchemy import event, update

from openbotkit.errors import InvalidInput, LimitsReached, NotAuthorized, NotFound, Problem
from openbotkit.ids import now_ms
from openbotkit.ingestion.blobs import SignedRequest, StoredBlob, read_all
from openbotkit.services import crud, files
from openbotkit.services.context import AccountScope, Ctx
from openbotkit.settings import Settings
from openbotkit.store.tables import File

if TYPE_CHECKING:
    from openbotkit.ingestion.fetch import Fetched, Fetcher
    from openbotkit.runtime import Runtime

URL_TTL_S = 3600


@dataclass(frozen=True)
class Content:
    """A file's content as stored: read it with `runtime.blobs.open(file_id)`."""

    file_id: str
    content_type: str
    name: str
    size: int


def guess_type(name: str | None, given: str | None) -> str:
    """A usable content type: the given one (the last of a comma-joined list), else by name."""
    if given:
        last = given.split(",")[-1].split(";")[0].strip().lower()
        if last and last != "application/octet-stream":
            return last
    guessed = mimetypes.guess_type(name or "")[0]
    return guessed or (given.split(",")[-1].strip() if given else "application/octet-stream")


def check_size(settings: Settings, size: int) -> None:
    limit = settings.max_file_bytes
    if size > limit:
        raise LimitsReached(
            f"file of {size} bytes is over the {limit}-byte limit (OBK_MAX_FILE_BYTES)",
            details=[Problem("/file/size", "maximum", f"at most {limit} bytes")],
        )


def _record(
    ctx: Ctx,
    file: File,
    stored: StoredBlob,
    content_type: str,
    name: str | None,
    origin: Fetched | None = None,
) -> File:
    """Note new content on the file row. `origin`: it came from a URL, which a sync re-fetches
    (conditionally, with its validators); content from anywhere else ends that."""
    meta = dict(file.meta or {})
    meta["contentType"] = content_type  # where ChatBotKit puts the detected type
    fields: dict[str, object] = {
        "content_type": content_type,
        "size": stored.size,
        "sha256": stored.sha256,
        "meta": meta,
        "source_url": origin.url if origin else None,
        "etag": origin.etag if origin else None,
        "last_modified": origin.last_modified if origin else None,
        "fetched_at": now_ms() if origin else None,
    }
    if name and not file.name:
        fields["name"] = name
    crud.update(ctx, file, fields)
    return file


def store_chunks(
    ctx: Ctx,
    ref: str,
    chunks: Iterable[bytes],
    content_type: str | None,
    name: str | None,
    origin: Fetched | None = None,
) -> File:
    file = files.get(ctx, ref)
    stored = ctx.runtime.blobs.put_chunks(file.id, chunks, ctx.settings.max_file_bytes)
    return _record(ctx, file, stored, guess_type(name or file.name, content_type), name, origin)


def store_path(
    ctx: Ctx,
    ref: str,
    path: Path,
    content_type: str | None,
    name: str | None,
    *,
    move: bool = False,
    origin: Fetched | None = None,
) -> File:
    """Content from a file on this machine (the local connector's upload, or a staged body;
    `origin`: the body was fetched from a URL, as for `_record`)."""
    file = files.get(ctx, ref)
    if not path.is_file():
        raise InvalidInput(f"no such file: {path}", details=[Problem("/path", "exists", str(path))])
    check_size(ctx.settings, path.stat().st_size)
    stored = ctx.runtime.blobs.put_file(file.id, path, move=move)
    name = name or (None if move else path.name)  # a staged file's own name means nothing
    return _record(ctx, file, stored, guess_type(name, content_type), name, origin)


def store_data_url(ctx: Ctx, ref: str, url: str, name: str | None) -> File:
    """`data:<mime>[;base64],<payload>`."""
    header, sep, payload = url.partition(",")
    if not sep:
        raise InvalidInput(
            "malformed data: URL", details=[Problem("/file", "data_url", "no comma")]
        )
    mime = header[5:].split(";")[0] or "text/plain"
    check_size(ctx.settings, len(payload) * 3 // 4)
    try:
        data = (
            base64.b64decode(payload, validate=True)
            if header.endswith(";base64")
            else unquote_to_bytes(payload)
        )
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(
            f"data: URL payload is not valid base64: {exc}",
            details=[Problem("/file", "base64", str(exc))],
        ) from None
    return store_chunks(ctx, ref, [data], mime, name)


@dataclass(frozen=True)
class Staged:
    """Content fetched into the blob store's staging area, not yet any file's."""

    path: Path
    content_type: str
    name: str | None
    origin: Fetched  # the URL as given (not the last redirect's): what a sync asks again


def fetcher(settings: Settings) -> Fetcher:
    """The one fetcher, as the settings make it; host names answer from OBK_RESOLVE_HOSTS
    first, then from the system's resolver."""
    # httpx is imported here, not with the module: most actions never fetch a URL.
    from openbotkit.ingestion.fetch import Fetcher, hosts_resolver, system_resolver

    return Fetcher.from_settings(settings, hosts_resolver(settings.resolve_hosts, system_resolver))


def fetch_url(runtime: Runtime, url: str, *, field: str = "/file") -> Staged:
    """Fetch an http(s) URL server-side, guarded against private targets (SSRF), within the
    fetch deadline, into staging. Errors name `field`, the input that gave the URL.

    Runs outside any transaction: a slow or hostile server must not hold the write lock.
    """
    from openbotkit.ingestion.fetch import Fetched

    staged = runtime.blobs.staged_file()
    try:
        with fetcher(runtime.settings).open(url, field=field) as body, staged.open("wb") as out:
            for chunk in body.chunks:
                out.write(chunk)
            fetched = body.fetched
    except BaseException:
        runtime.blobs.release_staged(staged)
        raise
    origin = Fetched(url, fetched.content_type, fetched.name, fetched.etag, fetched.last_modified)
    return Staged(staged, fetched.content_type, fetched.name, origin)


def refetch(scope: AccountScope, file_id: str) -> bool:
    """Fetch a file that came from a URL again, conditionally; True if its content was replaced.

    Nothing is held open while the network is used: the row is read, the URL asked (a 304
    costs that one request; the connection pinned like any fetch), the new body written to the
    blob store (atomically), and the row updated in a short transaction at the end.
    """
    from openbotkit.ingestion.fetch import Fetched, conditional_headers

    with scope.transaction(write=False) as ctx:
        file = files.get(ctx, file_id)
        url, headers = file.source_url, conditional_headers(file.etag, file.last_modified)
    if url is None:
        return False
    settings = scope.settings
    with fetcher(settings).open(url, headers=headers) as body:
        fetched = body.fetched
        if fetched.not_modified:
            stored = None
        else:
            blobs = scope.runtime.blobs
            stored = blobs.put_chunks(file_id, body.chunks, settings.max_file_bytes)
    with scope.transaction() as ctx:
        try:
            file = files.get(ctx, file_id)
        except NotFound:
            if stored is not None:  # deleted while we fetched: no blob without its row
                scope.runtime.blobs.delete(file_id)
            raise
        if stored is None:
            file.fetched_at = now_ms()
            return False
        origin = Fetched(
            url,
            fetched.content_type,
            fetched.name,
            fetched.etag or None,
            fetched.last_modified or None,
        )
        _record(ctx, file, stored, guess_type(file.name, fetched.content_type), None, origin)
        return True


def current_bytes(ctx: Ctx, file: File) -> bytes | None:
    """What a sync of `file` would read now, changing nothing: for a file from a URL, the remote
    content if it changed (asked conditionally); else the stored content. None: no content."""
    if file.source_url:
        from openbotkit.ingestion.fetch import conditional_headers

        headers = conditional_headers(file.etag, file.last_modified)
        data, _ = fetcher(ctx.settings).read(file.source_url, headers=headers, field="/fileId")
        if data is not None:
            return data
    reader = ctx.runtime.blobs.open(file.id)
    return read_all(reader) if reader is not None else None


def direct_upload(
    ctx: Ctx, ref: str, size: int, content_type: str, name: str | None
) -> SignedRequest | None:
    """The blob store's own presigned PUT for this file, or None when the store has none.

    The content becomes whatever the client PUTs there next: the old content goes now, the
    type is recorded now, and the size when the content is first used (see `content`).
    """
    blobs = ctx.runtime.blobs
    file = files.get(ctx, ref)
    signed = blobs.presign_put(file.id, size, URL_TTL_S)
    if signed is None:
        return None
    meta = dict(file.meta or {})
    meta["contentType"] = content_type
    fields = {"content_type": content_type, "size": None, "sha256": None, "meta": meta}
    if name and not file.name:
        fields["name"] = name
    crud.update(ctx, file, fields)
    file_id = file.id
    event.listen(
        ctx.session, "after_commit", lambda _s: files.delete_content(blobs, file_id), once=True
    )
    return signed


def content(ctx: Ctx, ref: str) -> tuple[File, Content | None]:
    """The file and its content, or None when it has none yet.

    A file uploaded straight to the object store (presigned PUT) has no size recorded: the
    first use asks the store (one HEAD) and records it, which completes that upload as the
    API's own PUT handler completes one that passes through it (its hash follows when the
    bytes are first read: `note_sha256`).
    """
    file = files.get(ctx, ref)
    size = ctx.runtime.blobs.size(file.id)
    if size is None:
        return file, None
    if file.size is None:
        limit = ctx.settings.max_file_bytes
        if size > limit:
            ctx.runtime.blobs.delete(file.id)
            raise LimitsReached(
                f"the uploaded file of {size} bytes is over the {limit}-byte limit"
                " (OBK_MAX_FILE_BYTES) and was removed",
                details=[Problem("/file/size", "maximum", f"at most {limit} bytes")],
            )
        crud.update(ctx, file, {"size": size})
    name = file.name or f"{file.id}.bin"
    return file, Content(file.id, file.content_type or "application/octet-stream", name, size)


def note_sha256(ctx: Ctx, file_id: str, sha256: str, size: int, seen_at: int) -> bool:
    """Record the hash of content uploaded straight to the object store, once its bytes are
    first read here (a worker's sync): the presigned PUT never passed them through an API
    process, and without the hash a later sync of the same bytes could not tell they are
    unchanged. Fenced: only if the row is still as it was when the bytes were read (no hash
    yet, this size, not updated since `seen_at`), so a new upload meanwhile is never given the
    old content's hash. True if recorded."""
    result = ctx.session.execute(
        update(File)
        .where(
            File.id == file_id,
            File.account_id == ctx.account_id,
            File.sha256.is_(None),
            File.size == size,
            File.updated_at == seen_at,
        )
        .values(sha256=sha256)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def store_download_url(ctx: Ctx, file: File) -> str | None:
    """The blob store's own presigned GET for the file, or None when the store has none."""
    return ctx.runtime.blobs.presign_get(
        file.id,
        file.name or f"{file.id}.bin",
        file.content_type or "application/octet-stream",
        URL_TTL_S,
    )


# -- signed URLs -----------------------------------------------------------------------------


def sign(
    key: bytes, verb: str, file_id: str, account_id: str, ttl_s: int = URL_TTL_S
) -> dict[str, str]:
    """Query parameters that let anyone holding them `verb` this file's content until expiry."""
    expires = str(int(time.time()) + ttl_s)
    message = f"{verb}\n{file_id}\n{account_id}\n{expires}".encode()
    signature = hmac.new(key, message, hashlib.sha256).hexdigest()
    return {"account": account_id, "expires": expires, "signature": signature}


def verify(
    key: bytes, verb: str, file_id: str, account_id: str, expires: str, signature: str
) -> None:
    message = f"{verb}\n{file_id}\n{account_id}\n{expires}".encode()
    expected = hmac.new(key, message, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise NotAuthorized("this link is not valid")
    if not expires.isdigit() or int(expires) < time.time():
        raise NotAuthorized("this link has expired; ask for a new one")

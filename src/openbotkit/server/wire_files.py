"""The HTTP forms of file content (spec §7.3–7.4): the five upload modes, binary downloads,
public files without a secret, and the signed PUT/GET content URLs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import orjson
from pydantic import BaseModel
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Message

from openbotkit.access import Key
from openbotkit.actions.file_content import NO_CONTENT
from openbotkit.engine import Engine
from openbotkit.errors import (
    InvalidInput,
    LimitsReached,
    NotAuthenticated,
    NotFound,
    ObkError,
    Problem,
)
from openbotkit.ingestion.blobs import attachment, iter_chunks
from openbotkit.server.negotiation import JSON, json_body
from openbotkit.server.routes import PREFIXES, authenticate
from openbotkit.server.wire import EXTRA_ROUTES, WireAdapter, register_adapter
from openbotkit.services import file_content
from openbotkit.services.context import AccountScope
from openbotkit.store.tables import File


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


async def _stage_body(request: Request, engine: Engine) -> Path:
    """Stream the request body into the blob store's staging area, refusing it past the limit."""
    limit = engine.settings.max_file_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise LimitsReached(f"file of {declared} bytes is over the {limit}-byte limit")
    staged = engine.runtime.blobs.staged_file()
    size = 0
    try:
        with staged.open("wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise LimitsReached(f"file is over the {limit}-byte limit (OBK_MAX_FILE_BYTES)")
                out.write(chunk)
    except BaseException:
        engine.runtime.blobs.release_staged(staged)
        raise
    return staged


MULTIPART_OVERHEAD = 64 * 1024


def capped_request(request: Request, limit: int) -> Request:
    """`request` whose body raises LimitsReached as soon as more than `limit` bytes arrived,
    whatever its shape (declared length, chunked, multipart)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise LimitsReached(f"request body of {declared} bytes is over the {limit}-byte limit")
    receive = request.receive
    received = 0

    async def capped_receive() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise LimitsReached(
                    f"request body is over the {limit}-byte limit (OBK_MAX_FILE_BYTES)"
                )
        return message

    return Request(request.scope, capped_receive)


def _last_type(value: str | None) -> str | None:
    # The Node SDK joins its own content type with ours: "application/octet-stream, text/plain".
    return value.split(",")[-1].strip() if value else None


async def read_upload(request: Request) -> dict[str, Any]:
    engine = _engine(request)
    ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if ctype == JSON or ctype == "":
        # A `path` in it is refused by the engine (the server's is not a local one).
        return await json_body(request)
    if ctype == "multipart/form-data":
        limit = engine.settings.max_file_bytes
        # Starlette spools a multipart file whole before handing it over: count the bytes as
        # they arrive instead, and stop reading at the limit (plus room for the part headers).
        capped = capped_request(request, limit + MULTIPART_OVERHEAD)
        async with capped.form(max_files=1, max_fields=20, max_part_size=64 * 1024) as form:
            part = form.get("file")
            if part is None or isinstance(part, str):
                raise InvalidInput(
                    "multipart upload needs a `file` part",
                    details=[Problem("/file", "required", "no file part")],
                )
            staged = engine.runtime.blobs.staged_file()
            size = 0
            try:
                with staged.open("wb") as out:
                    while chunk := await part.read(1 << 20):
                        size += len(chunk)
                        if size > limit:
                            raise LimitsReached(f"file is over the {limit}-byte limit")
                        out.write(chunk)
            except BaseException:  # over the limit, the client gone: nothing stays behind
                engine.runtime.blobs.release_staged(staged)
                raise
            request.state.staged = staged  # removed after the action unless it took it over
            return {"path": str(staged), "type": part.content_type, "name": part.filename}
    staged = await _stage_body(request, engine)
    request.state.staged = staged
    disposition = request.headers.get("content-disposition", "")
    name = (
        unquote(disposition.split("filename=", 1)[1].strip('"'))
        if "filename=" in disposition
        else None
    )
    return {
        "path": str(staged),
        "type": _last_type(request.headers.get("content-type")),
        "name": name,
    }


def absolute_urls(request: Request, data: dict[str, Any]) -> dict[str, Any]:
    """File outputs' content URLs are relative (the engine does not know the address the
    client used); over HTTP they are made absolute with the request's own base URL."""
    base = str(request.base_url).rstrip("/")
    for key in ("uploadRequest", "downloadRequest"):
        if key in data and data[key]["url"].startswith("/"):
            data[key]["url"] = base + data[key]["url"]
    if "url" in data and data["url"].startswith("/"):
        data["url"] = base + data["url"]
    return data


def _absolute(request: Request, out: BaseModel) -> Response:
    data = absolute_urls(request, out.model_dump(mode="json", by_alias=True, exclude_none=True))
    return Response(orjson.dumps(data), media_type="application/json")


def _bytes(engine: Engine, content: file_content.Content) -> Response:
    """The content streamed from the blob store; opened on a worker thread, like every read."""

    def chunks() -> Iterator[bytes]:
        reader = engine.runtime.blobs.open(content.file_id)
        if reader is not None:  # None only if deleted since it was found: the body falls short
            yield from iter_chunks(reader)

    return StreamingResponse(
        iterate_in_threadpool(chunks()),
        media_type=content.content_type,
        headers={
            "content-disposition": attachment(content.name),
            "content-length": str(content.size),
        },
    )


async def read_download(request: Request) -> dict[str, Any]:
    return {}  # the file id comes from the path; `path` (a local copy) is not for HTTP


def render_download(request: Request, out: BaseModel) -> Response | None:
    """JSON accept: `{url}`; anything else: the bytes (204 when there are none)."""
    if _accept(request) == JSON:
        return _absolute(request, out)
    data = out.model_dump()
    if data.get("size") is None:
        return Response(status_code=204)
    content = file_content.Content(
        data["id"],
        data.get("content_type") or "application/octet-stream",
        data.get("name") or f"{data['id']}.bin",
        data["size"],
    )
    return _bytes(_engine(request), content)


def download_error(request: Request, err: ObkError) -> Response | None:
    """No content: 404 for a JSON Accept (the action's error), 204 for the bytes (spec §7.4)."""
    no_content = isinstance(err, NotFound) and any(p.rule == NO_CONTENT for p in err.details)
    if no_content and _accept(request) != JSON:
        return Response(status_code=204)
    return None


def _accept(request: Request) -> str:
    return request.headers.get("accept", "").split(",")[0].split(";")[0].strip().lower()


async def download_account(request: Request, engine: Engine) -> str | Key:
    """A secret when given; without one, public files are still downloadable."""
    if request.headers.get("authorization"):
        return await authenticate(request, engine)
    file_id = request.path_params["fileId"]

    def owner() -> str | None:
        with engine.store.session(write=False) as session:
            row = session.get(File, file_id)
            return row.account_id if row is not None and row.visibility == "public" else None

    account_id = await run_in_threadpool(owner)
    if account_id is None:
        raise NotAuthenticated("Not authenticated: send Authorization: Bearer <secret>")
    return account_id


async def content(request: Request) -> Response:
    """The signed content URL: PUT stores the body (no finalize step), GET returns the bytes."""
    engine = _engine(request)
    file_id = request.path_params["fileId"]
    q = request.query_params
    verb = "put" if request.method == "PUT" else "get"
    account = q.get("account", "")
    file_content.verify(
        engine.runtime.url_key, verb, file_id, account, q.get("expires", ""), q.get("signature", "")
    )
    scope = AccountScope(engine.runtime, account)
    if verb == "get":

        def locate() -> file_content.Content | None:
            with scope.transaction(write=False) as ctx:
                return file_content.content(ctx, file_id)[1]

        found = await run_in_threadpool(locate)
        if found is None:
            return Response(status_code=204)
        return _bytes(engine, found)
    staged = await _stage_body(request, engine)
    ctype = _last_type(request.headers.get("content-type"))

    def store() -> str:
        with scope.transaction() as ctx:
            return file_content.store_path(ctx, file_id, staged, ctype, None, move=True).id

    try:
        stored = await run_in_threadpool(store)
    finally:  # taken over when stored; removed on every other path
        engine.runtime.blobs.release_staged(staged)
    return Response(orjson.dumps({"id": stored}), media_type=JSON)


register_adapter("upload_file", WireAdapter(read_input=read_upload, render=_absolute))
register_adapter(
    "download_file",
    WireAdapter(
        read_input=read_download,
        render=render_download,
        account=download_account,
        render_error=download_error,
        any_accept=True,
    ),
)
EXTRA_ROUTES.extend(
    Route(prefix + "/file/{fileId}/content", content, methods=["GET", "PUT"]) for prefix in PREFIXES
)

"""The server's one error rendering: ChatBotKit's `{"message", "code"}` body and status."""

from __future__ import annotations

import logging

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from openbotkit.errors import (
    InternalError,
    InvalidInput,
    MethodNotAllowed,
    NotAuthenticated,
    NotFound,
    ObkError,
)

log = logging.getLogger("openbotkit.server")


def error_body(err: ObkError) -> bytes:
    """`message` and `code` are ChatBotKit's; `details` (field pointers and rules) is ours."""
    body: dict[str, object] = {"message": err.message, "code": err.wire_code}
    if err.details:
        body["details"] = [d.to_json() for d in err.details]
    return orjson.dumps(body)


def error_response(err: ObkError) -> Response:
    headers = {}
    if err.status == 403 or err.wire_code == "LIMITS_REACHED":
        headers["X-Failure-Code"] = err.wire_code
    return Response(error_body(err), err.status, headers, media_type="application/json")


async def on_obk_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ObkError)
    return error_response(exc)


async def on_http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return error_response(MethodNotAllowed("Method not allowed"))
    if exc.status_code == 404:
        return error_response(NotFound("Not found: no such route"))
    if exc.status_code == 401:
        return error_response(NotAuthenticated("Not authenticated"))
    return error_response(InvalidInput(str(exc.detail)))


async def on_unexpected(request: Request, exc: Exception) -> Response:
    """A bug: log the traceback, say what failed, leak no internals."""
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(InternalError(f"Internal server error while handling {request.url.path}"))

"""Request decoding shared by every route: Accept negotiation, bodies, query strings, auth."""

from __future__ import annotations

import functools
from typing import Any

import orjson
from pydantic import BaseModel
from starlette.requests import Request

from openbotkit.errors import InvalidInput, LimitsReached, NotAuthenticated, Problem

JSON = "application/json"
JSONL = "application/jsonl"
# Bodies of JSON actions are small; files have their own limit and their own wire adapter.
MAX_JSON_BODY = 8 * 1024 * 1024


def negotiate(request: Request, default: str = JSON) -> str:
    """The response type: the first media type of Accept; absent or */* means the default."""
    raw = request.headers.get("accept", "")
    first = raw.split(",", 1)[0].split(";", 1)[0].strip().lower()
    if first in ("", "*/*", "application/*"):
        return default
    if first in (JSON, JSONL, "application/x-ndjson"):
        return JSONL if first != JSON else JSON
    raise InvalidInput(
        f"Unsupported accept header {first!r}; use application/json or application/jsonl",
        details=[Problem("/headers/accept", "enum", "unsupported media type")],
    )


def bearer_token(request: Request) -> str:
    """The secret from `Authorization: Bearer <secret>` (or `Token <secret>`)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() not in ("bearer", "token") or not token.strip():
        raise NotAuthenticated("Not authenticated: send Authorization: Bearer <secret>")
    return token.strip()


async def read_body(request: Request, limit: int = MAX_JSON_BODY) -> bytes:
    """The request body, refused as soon as it passes `limit` bytes (never read whole first)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise LimitsReached(f"request body of {declared} bytes is over the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise LimitsReached(f"request body is over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


async def json_body(request: Request) -> dict[str, Any]:
    """A POST body as a JSON object; empty means {}."""
    raw = await read_body(request)
    if not raw.strip():
        return {}
    try:
        # orjson, not json: it refuses what a database or a JSON encoder would choke on later
        # (lone surrogates, NaN, nesting deeper than 1024 that would exhaust the stack).
        data = orjson.loads(raw.removeprefix(b"\xef\xbb\xbf"))
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(
            f"request body is not valid JSON: {exc}", details=[Problem("", "json", str(exc))]
        ) from None
    if not isinstance(data, dict):
        raise InvalidInput(
            "request body must be a JSON object",
            details=[Problem("", "type", f"expected an object, got {type(data).__name__}")],
        )
    return data


def _query_value(value: str) -> Any:
    # A ChatBotKit server turns "true"/"false" into booleans before matching meta.
    return {"true": True, "false": False}.get(value, value)


@functools.cache
def _aliases(model: type[BaseModel]) -> frozenset[str]:
    return frozenset(f.alias or name for name, f in model.model_fields.items())


def query_input(request: Request, model: type[BaseModel]) -> dict[str, Any]:
    """GET input from a query string: known fields only (unknown params are ignored, as the
    SDKs leak path ids into queries); `meta.k=v` and `meta[k]=v` become `{"meta": {k: v}}`."""
    if not request.scope.get("query_string"):
        return {}
    fields = _aliases(model)
    data: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    for key, value in request.query_params.multi_items():
        if key.startswith("meta.") and len(key) > 5:
            meta[key[5:]] = _query_value(value)
        elif key.startswith("meta[") and key.endswith("]"):
            meta[".".join(part.rstrip("]") for part in key[5:].split("["))] = _query_value(value)
        elif key in fields and key != "meta":
            data[key] = value
    if meta and "meta" in fields:
        data["meta"] = meta
    return data

"""Routes generated from the action registry, under /api/v1 and /v1, with no per-action code."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
from pydantic import BaseModel
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from openbotkit.actions import Action, Effect, Registry
from openbotkit.actions.base import ListInput
from openbotkit.engine import Engine
from openbotkit.errors import NotAuthenticated, ObkError, error_class_for
from openbotkit.server.errors import error_response
from openbotkit.server.negotiation import JSONL, bearer_token, json_body, negotiate, query_input
from openbotkit.server.wire import ADAPTERS, WireAdapter
from openbotkit.services.secrets import account_for_token, cached_account

PREFIXES = ("/api/v1", "/v1")


def json_response(out: BaseModel) -> Response:
    """Pydantic straight to JSON bytes: serialization is the cost of an API request."""
    body = out.model_dump_json(by_alias=True, exclude_none=True)
    return Response(body, media_type="application/json")


def jsonl_line(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event) + b"\n"


async def authenticate(request: Request, engine: Engine) -> str:
    """The account of the request's secret; a recently seen secret costs no database trip."""
    token = bearer_token(request)
    account_id = cached_account(engine, token)
    if account_id is None:
        account_id = await run_in_threadpool(account_for_token, engine, token)
    if account_id is None:
        raise NotAuthenticated("Not authenticated: unknown or revoked secret")
    return account_id


class ActionEndpoint:
    """The one endpoint shape every action is served by."""

    def __init__(self, act: Action, engine: Engine) -> None:
        self.act = act
        self.engine = engine
        self.adapter = ADAPTERS.get(act.name, WireAdapter())
        self.is_list = issubclass(act.input, ListInput)
        # Plain reads take well under a millisecond on SQLite in WAL mode (readers never wait
        # for writers): a thread hop costs more than it saves. Writes, and reads declared
        # `offload=True` (search runs a model), go to the thread pool.
        self.inline = act.effect is Effect.READ and not act.extensions.get("offload")

    async def handle(self, request: Request) -> Response:
        accept = negotiate(request)
        if self.adapter.account:
            account_id = await self.adapter.account(request, self.engine)
        else:
            account_id = await authenticate(request, self.engine)
        inp = self.act.parse_input(await self.read_input(request))
        if accept == JSONL and "stream" in self.act.extensions:
            return await self.stream_events(inp, account_id)
        if accept == JSONL and self.is_list:
            return StreamingResponse(self.stream_items(inp, account_id), media_type=JSONL)
        if self.inline:
            out = self.engine.run(self.act, inp, account_id=account_id)
        else:
            out = await run_in_threadpool(self.engine.run, self.act, inp, account_id=account_id)
        return self.respond(request, out)

    def respond(self, request: Request, out: BaseModel) -> Response:
        if self.adapter.render:
            rendered = self.adapter.render(request, out)
            if rendered is not None:
                return rendered
        return json_response(out)

    async def read_input(self, request: Request) -> dict[str, Any]:
        if self.adapter.read_input:
            data = await self.adapter.read_input(request)
        elif self.act.method == "GET":
            data = query_input(request, self.act.input)
        else:
            data = await json_body(request)
        data.update(request.path_params)  # the path names the resource, whatever the body says
        return data

    async def stream_items(self, inp: BaseModel, account_id: str) -> AsyncIterator[bytes]:
        """A list as `item` lines, walking every page until `take` items or the end."""
        assert isinstance(inp, ListInput)
        wanted, sent = inp.take, 0
        page_input = inp
        while sent < wanted:
            out = await run_in_threadpool(
                self.engine.run, self.act, page_input, account_id=account_id
            )
            page = out.model_dump(mode="json", by_alias=True, exclude_none=True)
            for item in page["items"][: wanted - sent]:
                yield jsonl_line({"type": "item", "data": item})
                sent += 1
            if not page["cursor"] or not page["items"]:
                return
            page_input = page_input.model_copy(update={"cursor": page["cursor"]})

    async def stream_events(self, inp: BaseModel, account_id: str) -> Response:
        """A streaming action's events as JSONL. An error before the first event is a plain
        JSON error with its status; after it, an in-band `error` event (the status is sent)."""
        events: Iterator[dict[str, Any]] = self.engine.stream(self.act, inp, account_id=account_id)
        try:
            first = await run_in_threadpool(next, events, None)
        except ObkError as err:
            return error_response(err)
        if first is None:
            return error_response(error_class_for(code="internal_error")("stream produced nothing"))
        return StreamingResponse(self._lines(first, events), media_type=JSONL)

    async def _lines(
        self, first: dict[str, Any], events: Iterator[dict[str, Any]]
    ) -> AsyncIterator[bytes]:
        try:
            yield jsonl_line(first)
            async for event in iterate_in_threadpool(events):
                yield jsonl_line(event)
        except ObkError as err:
            yield jsonl_line(
                {"type": "error", "data": {"message": err.message, "code": err.wire_code}}
            )
        finally:
            # A client that went away closes the generator, so generation stops.
            await run_in_threadpool(events.close)  # type: ignore[attr-defined]


def action_routes(registry: Registry, engine: Engine) -> list[BaseRoute]:
    return [
        Route(
            prefix + act.path,
            ActionEndpoint(act, engine).handle,
            methods=[act.method],
            name=act.name,
        )
        for act in registry
        for prefix in PREFIXES
    ]

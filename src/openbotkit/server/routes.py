"""Routes generated from the action registry, under /api/v1 and /v1, with no per-action code."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import anyio
import orjson
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from openbotkit.access import Key
from openbotkit.actions import Action, Effect, Registry
from openbotkit.actions.base import ListInput
from openbotkit.engine import Engine
from openbotkit.errors import InternalError, NotAuthenticated, ObkError
from openbotkit.server.errors import error_response
from openbotkit.server.lanes import Lane, Lanes
from openbotkit.server.negotiation import (
    JSON,
    JSONL,
    bearer_token,
    json_body,
    negotiate,
    query_input,
)
from openbotkit.server.wire import ADAPTERS, WireAdapter
from openbotkit.services.secrets import cached_key, check_live, key_for_token

PREFIXES = ("/api/v1", "/v1")
log = logging.getLogger("openbotkit.server")


def json_response(out: BaseModel) -> Response:
    """Pydantic straight to JSON bytes: serialization is the cost of an API request."""
    body = out.model_dump_json(by_alias=True, exclude_none=True)
    return Response(body, media_type="application/json")


def jsonl_line(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event) + b"\n"


async def authenticate(request: Request, engine: Engine) -> Key:
    """The key of the request's secret, whose limits the engine enforces on every action it
    runs for it; a recently seen secret costs no database trip. Every HTTP surface (REST and
    MCP over HTTP) authenticates here."""
    token = bearer_token(request)
    key = cached_key(engine.runtime, token)
    if key is None:
        key = await run_in_threadpool(key_for_token, engine.runtime, token)
    if key is None:
        raise NotAuthenticated("Not authenticated: unknown or revoked secret")
    request.state.key_id = key.id  # for the access log
    return check_live(key)


class ActionEndpoint:
    """The one endpoint shape every action is served by."""

    def __init__(self, act: Action, engine: Engine, lanes: Lanes) -> None:
        self.act = act
        self.engine = engine
        self.lanes = lanes
        # Seconds, not milliseconds (a model's generation, an evaluation): outside admission,
        # in the lane for long work, as a stream or as one answer.
        self.long = "stream" in act.extensions or bool(act.extensions.get("long"))
        self.lane = lanes.long if self.long else lanes.for_effect(act.effect)
        # Whether an input makes the action fetch a URL (declared `fetches=`): such a call runs
        # outside admission, in the fetch lane, within its account's share (server/lanes.py).
        self.fetches: Callable[[BaseModel], bool] | None = act.extensions.get("fetches")
        self.adapter = ADAPTERS.get(act.name, WireAdapter())
        self.is_list = issubclass(act.input, ListInput)
        # Plain reads take well under a millisecond on SQLite in WAL mode (readers never wait
        # for writers): a thread hop costs more than it saves. Writes, and reads declared
        # `offload=True` (search runs a model, usage sums a ledger), go to the thread pool, as
        # do lists filtered by meta (they scan). On PostgreSQL every read is a network round
        # trip to another process: on the event loop it would stall every request of the
        # process meanwhile, so all of them go to the thread pool.
        self.inline = (
            act.effect is Effect.READ
            and not act.extensions.get("offload")
            and engine.store.is_sqlite
        )

    async def handle(self, request: Request) -> Response:
        accept = JSON if self.adapter.any_accept else negotiate(request)
        account_id: str | Key
        if self.adapter.account:
            account_id = await self.adapter.account(request, self.engine)
        else:
            account_id = await authenticate(request, self.engine)
        # The body arrives at the client's pace: read before admission, so a slow upload never
        # holds a place that others wait for.
        data = await self.read_input(request)
        try:
            return await self.run_input(request, accept, data, account_id)
        finally:
            # A body staged for this request (wire adapters note it in `request.state.staged`)
            # that the action did not take over (refused by authorization or validation,
            # failed, cancelled) goes now: refused uploads must not fill the disk.
            staged: Path | None = getattr(request.state, "staged", None)
            if staged is not None:
                self.engine.runtime.blobs.release_staged(staged)

    async def run_input(
        self, request: Request, accept: str, data: dict[str, Any], account_id: str | Key
    ) -> Response:
        inp = self.act.parse_input(data)
        if self.fetches is not None and self.fetches(inp):
            return await self.fetching(request, accept, inp, account_id)
        if self.long:
            return await self.answer(request, accept, inp, account_id)
        async with self.lanes.admit:  # in arrival order (server/lanes.py)
            return await self.answer(request, accept, inp, account_id)

    async def answer(
        self, request: Request, accept: str, inp: BaseModel, account_id: str | Key
    ) -> Response:
        if accept == JSONL and "stream" in self.act.extensions:
            return await self.stream_events(inp, account_id)
        if accept == JSONL and self.is_list:
            return await self.stream_items(inp, account_id)
        try:
            if self.inline and not getattr(inp, "meta", None):
                # A meta filter makes a list scan the account's rows: that goes to a thread.
                out = self.engine.run(self.act, inp, account_id=account_id)
            else:
                out = await self.lanes.run(
                    self.lane, self.engine.run, self.act, inp, account_id=account_id
                )
        except ObkError as err:
            rendered = (
                self.adapter.render_error(request, err) if self.adapter.render_error else None
            )
            if rendered is None:
                raise
            return rendered
        return self.respond(request, out)

    async def fetching(
        self, request: Request, accept: str, inp: BaseModel, account_id: str | Key
    ) -> Response:
        """A call that fetches a URL, on the fetch lane, holding one of its account's fetch
        places. A stream's first step (where a completion fetches its attachments, before any
        generation) runs there and the rest in the long lane, streamed or answered whole;
        anything else runs there whole."""
        account = account_id if isinstance(account_id, str) else account_id.account_id
        slot = self.lanes.fetch_slots.slot(account)
        if "stream" not in self.act.extensions:
            async with slot:
                try:
                    out = await self.lanes.run(
                        self.lanes.fetch, self.engine.run, self.act, inp, account_id=account_id
                    )
                except ObkError as err:
                    rendered = (
                        self.adapter.render_error(request, err)
                        if self.adapter.render_error
                        else None
                    )
                    if rendered is None:
                        raise
                    return rendered
            return self.respond(request, out)
        if accept == JSONL:
            async with slot:
                return await self.stream_events(inp, account_id, first_lane=self.lanes.fetch)
        events = self.engine.stream(self.act, inp, account_id=account_id)
        async with slot:
            last = await self.lanes.run(self.lanes.fetch, next, events, None)
        try:
            async for event in self.lanes.long.iterate(events):
                last = event
        finally:
            if isinstance(events, Generator):
                with anyio.CancelScope(shield=True):
                    await self.lanes.run(self.lanes.long, events.close)
        if last is None or last["type"] != "result":
            raise InternalError(f"{self.act.name} ended without a result")
        return self.respond(request, self.act.output.model_validate(last["data"]))

    def respond(self, request: Request, out: BaseModel) -> Response:
        if self.adapter.render:
            rendered = self.adapter.render(request, out)
            if rendered is not None:
                return rendered
        return json_response(out)

    async def read_input(self, request: Request) -> dict[str, Any]:
        if self.adapter.read_input:
            data = await self.adapter.read_input(request)
        else:
            data = (
                query_input(request, self.act.input)
                if self.act.method == "GET"
                else await json_body(request)
            )
        # Local-only fields (`path`) are refused by the server's engine, as for every surface.
        data.update(request.path_params)  # the path names the resource, whatever the body says
        return data

    async def stream_items(self, inp: BaseModel, account_id: str | Key) -> Response:
        """A list as `item` lines, walking every page until `take` items or the end. The first
        page is read before the status is sent, so an unknown parent id is still a JSON 404."""
        assert isinstance(inp, ListInput)
        first = await self.lanes.run(
            self.lane, self.engine.run, self.act, inp, account_id=account_id
        )
        return StreamingResponse(self._items(inp, first, account_id), media_type=JSONL)

    async def _items(
        self, inp: ListInput, page: BaseModel, account_id: str | Key
    ) -> AsyncIterator[bytes]:
        wanted, sent = inp.take, 0
        try:
            while True:
                data = page.model_dump(mode="json", by_alias=True, exclude_none=True)
                for item in data["items"][: wanted - sent]:
                    yield jsonl_line({"type": "item", "data": item})
                    sent += 1
                if sent >= wanted or not data["cursor"] or not data["items"]:
                    return
                inp = inp.model_copy(update={"cursor": data["cursor"]})
                page = await self.lanes.run(
                    self.lane, self.engine.run, self.act, inp, account_id=account_id
                )
        except Exception as exc:  # the status is sent: the error goes in-band
            yield error_line(exc)

    async def stream_events(
        self, inp: BaseModel, account_id: str | Key, first_lane: Lane | None = None
    ) -> Response:
        """A streaming action's events as JSONL. An error before the first event is a plain
        JSON error with its status; after it, an in-band `error` event (the status is sent).
        The first event is made on `first_lane` (default: the long lane)."""
        events = self.engine.stream(self.act, inp, account_id=account_id)
        try:
            first = await self.lanes.run(first_lane or self.lanes.long, next, events, None)
        except ObkError as err:
            return error_response(err)
        if first is None:
            return error_response(InternalError(f"{self.act.name} streamed no events"))
        return StreamingResponse(self._events(first, events), media_type=JSONL)

    async def _events(
        self, first: dict[str, Any], events: Iterator[dict[str, Any]]
    ) -> AsyncIterator[bytes]:
        try:
            yield jsonl_line(first)
            async for event in self.lanes.long.iterate(events):
                yield jsonl_line(event)
        except Exception as exc:
            yield error_line(exc)
        finally:
            # A client that went away cancels this task; the shield still closes the
            # generator on a worker thread, so generation stops and its cleanup (a rollback,
            # say) runs now and never blocks the event loop.
            if isinstance(events, Generator):
                with anyio.CancelScope(shield=True):
                    await self.lanes.run(self.lanes.long, events.close)


def error_line(exc: Exception) -> bytes:
    """The in-band `error` event of a stream whose 200 status is already sent."""
    if not isinstance(exc, ObkError):
        log.error("stream failed after its first line", exc_info=exc)
        exc = InternalError("Internal server error while streaming")
    return jsonl_line({"type": "error", "data": {"message": exc.message, "code": exc.wire_code}})


def action_routes(registry: Registry, engine: Engine, lanes: Lanes) -> list[BaseRoute]:
    return [
        Route(
            prefix + act.path,
            ActionEndpoint(act, engine, lanes).handle,
            methods=[act.method],
            name=act.name,
        )
        for act in registry
        for prefix in PREFIXES
    ]

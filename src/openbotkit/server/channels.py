"""Where chat channels deliver updates: `POST /v1/integration/slack/{integrationId}/event`,
`POST /v1/integration/telegram/{integrationId}/webhook` (and under `/api/v1`). No API key: the
channel's own signature (or secret token) authenticates the request (services/channel_events.py,
services/telegram.py), and the answer is left to a worker, so the channel gets its
acknowledgement well within the seconds it waits."""

from __future__ import annotations

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from openbotkit.engine import Engine
from openbotkit.errors import InvalidInput, Problem
from openbotkit.server.routes import PREFIXES
from openbotkit.services import channel_events

MAX_EVENT_BYTES = 1024 * 1024


def channel_routes(engine: Engine) -> list[BaseRoute]:
    async def slack_event(request: Request) -> Response:
        body = await _body(request)
        ack = await run_in_threadpool(
            channel_events.receive_slack,
            engine.runtime,
            request.path_params["integrationId"],
            request.headers,
            body,
        )
        return Response(orjson.dumps(ack.body), media_type="application/json")

    async def telegram_update(request: Request) -> Response:
        from openbotkit.services import telegram

        body = await _body(request)
        ack = await run_in_threadpool(
            telegram.receive,
            engine.runtime,
            request.path_params["integrationId"],
            request.headers,
            body,
        )
        return Response(orjson.dumps(ack.body), media_type="application/json")

    path = "/integration/slack/{integrationId}/event"
    telegram_path = "/integration/telegram/{integrationId}/webhook"
    routes: list[BaseRoute] = [Route(p + path, slack_event, methods=["POST"]) for p in PREFIXES]
    routes += [Route(p + telegram_path, telegram_update, methods=["POST"]) for p in PREFIXES]
    return routes


async def _body(request: Request) -> bytes:
    body = await request.body()
    if len(body) > MAX_EVENT_BYTES:
        raise InvalidInput(
            "the event body is larger than 1 MiB",
            details=[Problem("", "max_size", "larger than 1 MiB")],
        )
    return body

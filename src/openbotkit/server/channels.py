"""Where chat channels deliver updates: `POST /v1/integration/slack/{integrationId}/event` (and
under `/api/v1`). No API key: the channel's own signature authenticates the request
(services/channel_events.py), and the answer is left to a worker, so Slack gets its
acknowledgement well within the three seconds it waits."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from openbotkit.channels import email as email_channel
from openbotkit.engine import Engine
from openbotkit.errors import InvalidInput, Problem
from openbotkit.server.routes import PREFIXES
from openbotkit.services import channel_events

MAX_EVENT_BYTES = 1024 * 1024
log = logging.getLogger("openbotkit.channels")


def channel_routes(engine: Engine) -> list[BaseRoute]:
    async def slack_event(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_EVENT_BYTES:
            raise InvalidInput(
                "the event body is larger than 1 MiB",
                details=[Problem("", "max_size", "larger than 1 MiB")],
            )
        ack = await run_in_threadpool(
            channel_events.receive_slack,
            engine.runtime,
            request.path_params["integrationId"],
            request.headers,
            body,
        )
        return Response(orjson.dumps(ack.body), media_type="application/json")

    path = "/integration/slack/{integrationId}/event"
    return [Route(p + path, slack_event, methods=["POST"]) for p in PREFIXES]


async def email_listener(engine: Engine) -> asyncio.Server | None:
    """The SMTP listener for the email integrations, where OBK_EMAIL_LISTEN asks for one."""
    address = engine.runtime.settings.email_listen_address
    if address is None:
        return None
    runtime = engine.runtime

    def accepts(recipient: str) -> bool:
        return channel_events.email_accepts(runtime, recipient)

    def deliver(raw: bytes, recipients: Sequence[str], mail_from: str) -> None:
        channel_events.receive_email(runtime, raw, recipients, mail_from)

    server = await email_channel.listen(address[0], address[1], accepts, deliver)
    log.info("listening for email (SMTP) on %s:%d", *address)
    return server

"""Where chat channels deliver updates: `POST /v1/integration/slack/{integrationId}/event`,
`POST .../discord/{integrationId}/interaction`, `GET|POST .../whatsapp/{integrationId}/webhook` and
`POST .../telegram/{integrationId}/webhook` (each also under `/api/v1`), and the SMTP listener for
email (OBK_EMAIL_LISTEN). No API key: the channel's own signature (or secret token) authenticates
the request (services/channel_events.py, services/telegram.py), and the answer is left to a
worker, so the channel gets its acknowledgement well within the seconds it waits."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from openbotkit.channels import email as email_channel
from openbotkit.engine import Engine
from openbotkit.errors import InvalidInput, Problem
from openbotkit.runtime import Runtime
from openbotkit.server.routes import PREFIXES
from openbotkit.services import channel_events, channel_updates, telegram

MAX_EVENT_BYTES = 1024 * 1024
log = logging.getLogger("openbotkit.channels")


# How a channel's signed delivery is received: (runtime, integration id, headers, raw body).
Receiver = Callable[[Runtime, str, Mapping[str, str], bytes], channel_updates.Acknowledged]


def channel_routes(engine: Engine) -> list[BaseRoute]:
    def delivered(receive: Receiver) -> Callable[[Request], Awaitable[Response]]:
        """The endpoint of one channel: the raw body to `receive` (off the event loop: it
        verifies and stores), its acknowledgement as JSON."""

        async def endpoint(request: Request) -> Response:
            body = await _body(request)
            ack = await run_in_threadpool(
                receive,
                engine.runtime,
                request.path_params["integrationId"],
                request.headers,
                body,
            )
            return Response(orjson.dumps(ack.body), media_type="application/json")

        return endpoint

    whatsapp_post = delivered(channel_events.receive_whatsapp)

    async def whatsapp_webhook(request: Request) -> Response:
        if request.method == "GET":  # Meta's subscription handshake
            challenge = await run_in_threadpool(
                channel_events.whatsapp_challenge,
                engine.runtime,
                request.path_params["integrationId"],
                dict(request.query_params),
            )
            return PlainTextResponse(challenge)
        return await whatsapp_post(request)

    routes: list[BaseRoute] = []
    for handler, path, methods in (
        (
            delivered(channel_events.receive_slack),
            "/integration/slack/{integrationId}/event",
            ["POST"],
        ),
        (
            delivered(channel_events.receive_discord),
            "/integration/discord/{integrationId}/interaction",
            ["POST"],
        ),
        (whatsapp_webhook, "/integration/whatsapp/{integrationId}/webhook", ["GET", "POST"]),
        (delivered(telegram.receive), "/integration/telegram/{integrationId}/webhook", ["POST"]),
    ):
        routes.extend(Route(p + path, handler, methods=methods) for p in PREFIXES)
    return routes


async def _body(request: Request) -> bytes:
    """The raw body (signatures are over its bytes), refused past 1 MiB."""
    body = await request.body()
    if len(body) > MAX_EVENT_BYTES:
        raise InvalidInput(
            "the request body is larger than 1 MiB",
            details=[Problem("", "max_size", "larger than 1 MiB")],
        )
    return body


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

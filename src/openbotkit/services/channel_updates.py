"""What every chat channel's delivery goes through, below the channels themselves: the
integration it names, its body as JSON, the update stored once with its answer queued (a
redelivered update finds its id taken), and failures kept as the integration's lastError.

The channels (services/channel_events.py for Slack, Discord, WhatsApp and email,
services/telegram.py) receive through these, and the answer job (channel_events.answer) reads
what they stored.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from openbotkit.errors import InvalidInput, NotFound, Problem
from openbotkit.ids import new_id, now_ms
from openbotkit.ingestion import jobs
from openbotkit.runtime import Runtime
from openbotkit.services import integrations
from openbotkit.services.context import Ctx
from openbotkit.store.tables import Integration, IntegrationEvent, Job

log = logging.getLogger("openbotkit.channels")
# How often an answer is tried before it is given up (and reported).
MAX_ATTEMPTS = 5


class Undeliverable(Exception):
    """An answer that retrying cannot deliver (the token was refused, the bot is gone)."""


@dataclass(frozen=True)
class Acknowledged:
    """What the server answers the channel: a JSON body (empty: plain acknowledgement)."""

    body: dict[str, Any]


def integration_row(session: Session, kind: str, integration_id: str) -> Integration:
    """The integration of this kind (any account's: a delivery names it by id alone)."""
    row = session.get(Integration, integration_id)
    if row is None or row.kind != kind:
        raise NotFound(f"no {kind} integration {integration_id!r}")
    return row


def detached(runtime: Runtime, kind: str, integration_id: str) -> Integration:
    """The integration, read and detached (its settings and sealed secrets loaded)."""
    with runtime.store.session(write=False) as session:
        row = integration_row(session, kind, integration_id)
        session.expunge(row)
    return row


def json_object(body: bytes) -> dict[str, Any]:
    """A delivery's body as the JSON object every channel sends; InvalidInput otherwise."""
    try:
        value = json.loads(body)
    except ValueError:
        raise InvalidInput(
            "the request body is not JSON", details=[Problem("", "json", "not JSON")]
        ) from None
    if not isinstance(value, dict):
        raise InvalidInput("the request body is not an object", details=[Problem("", "type", "")])
    return value


def store_once(runtime: Runtime, row: Integration, event_id: str, payload: dict[str, Any]) -> bool:
    """Store the update and queue its answer, unless its id was stored before (False)."""
    with runtime.store.session() as session:
        return store(session, row, event_id, payload)


def store(session: Session, row: Integration, event_id: str, payload: dict[str, Any]) -> bool:
    """Store the update and queue its answer in the caller's transaction (a savepoint), unless
    its id was stored before (False). `payload` may carry the contact's `fingerprint`."""
    try:
        with session.begin_nested():
            event = IntegrationEvent(
                id=new_id(),
                account_id=row.account_id,
                integration_id=row.id,
                event_id=event_id,
                created_at=now_ms(),
            )
            session.add(event)
            session.flush()
            job_payload = {"eventId": event.id, "kind": row.kind, **payload}
            jobs.enqueue_payload(
                session, row.account_id, jobs.CHANNEL_ANSWER, job_payload, MAX_ATTEMPTS
            )
    except IntegrityError:
        log.info("integration %s: update %s delivered again, already queued", row.id, event_id)
        return False
    return True


def report(runtime: Runtime, integration_id: str, error: str) -> None:
    """Keep `error` as the integration's lastError (its own transaction: it outlives a failed
    attempt's)."""
    with runtime.store.session() as session:
        ctx = Ctx(runtime, session, "")
        integrations.report_error(ctx, integration_id, error)


def integration_of(session: Session, job: Job) -> str | None:
    """The integration a CHANNEL_ANSWER job answers for (to report its failure on)."""
    event = session.get(IntegrationEvent, (job.payload or {}).get("eventId"))
    return event.integration_id if event is not None else None


def sending_secret(runtime: Runtime, row: Integration, name: str, field: str) -> str:
    """The secret `name` (the input `field`) an answer is sent with; Undeliverable if unset."""
    token = integrations.secret(runtime.vault, row, name)
    if token is None:
        raise Undeliverable(f"the integration has no {field}: set it to answer")
    return token

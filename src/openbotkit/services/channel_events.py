"""Inbound chat-channel updates: verified, stored once, answered by a worker, sent, reported.

Receiving (on the server's request thread) only checks the signature, stores the update's id
(unique per integration) and queues a job, in one transaction: a redelivered update finds its
id taken and is acknowledged without a second job. The worker then picks the contact's
conversation, generates the answer (stored with the exchange, `completion.converse`), and
sends it; the job finishes in the transaction that marks the update sent. A worker that dies
before that leaves the job to be claimed again: an answer already generated is sent as it is,
not generated again. A send that fails is retried with the queue's backoff; every failure is
kept as the integration's lastError.

Sending is at least once at the network boundary: a worker killed after Slack accepted the
message but before its transaction commits sends it again on retry (Slack's chat.postMessage
has no idempotency key).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from openbotkit.channels import slack
from openbotkit.errors import InvalidInput, NotAuthenticated, NotFound, ObkError, Problem
from openbotkit.ids import new_id, now_ms
from openbotkit.ingestion import jobs
from openbotkit.runtime import Runtime
from openbotkit.services import completion, contacts, conversations, integrations
from openbotkit.services.context import AccountScope, Ctx
from openbotkit.store.tables import (
    Conversation,
    Integration,
    IntegrationEvent,
    IntegrationSession,
    Job,
)

log = logging.getLogger("openbotkit.channels")
MAX_ATTEMPTS = 5


class Undeliverable(Exception):
    """An answer that retrying cannot deliver (the token was refused, the bot is gone)."""


@dataclass(frozen=True)
class Acknowledged:
    """What the server answers the channel: a JSON body (empty: plain acknowledgement)."""

    body: dict[str, Any]


def _integration(session: Session, kind: str, integration_id: str) -> Integration:
    row = session.get(Integration, integration_id)
    if row is None or row.kind != kind:
        raise NotFound(f"no {kind} integration {integration_id!r}")
    return row


def receive_slack(
    runtime: Runtime, integration_id: str, headers: Mapping[str, str], body: bytes
) -> Acknowledged:
    """One Events API request: verified against the integration's signing secret, answered
    at once (the challenge, or an acknowledgement), its message queued to be answered."""
    with runtime.store.session(write=False) as session:
        row = _integration(session, "slack", integration_id)
        signing = integrations.secret(runtime.vault, row, "signing_secret")
        session.expunge(row)
    if signing is None:
        raise NotAuthenticated("the integration has no signingSecret: set it to receive events")
    try:
        slack.verify(
            signing,
            headers.get("x-slack-request-timestamp"),
            headers.get("x-slack-signature"),
            body,
        )
    except slack.BadSignature as exc:
        raise NotAuthenticated(f"Slack signature refused: {exc}") from None
    try:
        envelope = json.loads(body)
    except ValueError:
        raise InvalidInput(
            "the event body is not JSON", details=[Problem("", "json", "not JSON")]
        ) from None
    if not isinstance(envelope, dict):
        raise InvalidInput("the event body is not an object", details=[Problem("", "type", "")])
    if envelope.get("type") == "url_verification":
        return Acknowledged({"challenge": str(envelope.get("challenge", ""))})
    mention = slack.message_of(envelope)
    if mention is None:
        return Acknowledged({})
    if not integrations.allowed(row, mention.user, mention.channel):
        log.info("slack integration %s: ignored %s (not in allowFrom)", row.id, mention.user)
        return Acknowledged({})
    payload = {
        "team": mention.team,
        "user": mention.user,
        "channel": mention.channel,
        "text": slack.strip_mentions(mention.text),
        "threadTs": mention.thread_ts,
    }
    if not payload["text"]:
        return Acknowledged({})
    _store_once(runtime, row, mention.event_id, payload)
    return Acknowledged({})


def _store_once(runtime: Runtime, row: Integration, event_id: str, payload: dict[str, Any]) -> bool:
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


def _conversation_for(ctx: Ctx, row: Integration, fingerprint: str, now: int) -> str:
    """The contact's conversation with the integration's bot: the current one if they wrote
    within sessionDuration, else a new one. The contact is stored if contactCollection is on
    (the default); the conversation names it either way."""
    if row.bot_id is None:
        raise Undeliverable("the integration has no bot: set its botId")
    contact_id = contacts.contact_id(ctx.account_id, fingerprint)
    if row.contact_collection is not False:
        contact_id = contacts.ensure(ctx, fingerprint, {}).id
    current = ctx.session.get(IntegrationSession, (row.id, contact_id))
    conversation_id = None
    if (
        current is not None
        and now - current.last_message_at <= integrations.session_ms(row)
        and ctx.session.get(Conversation, current.conversation_id) is not None
    ):
        conversation_id = current.conversation_id
    if conversation_id is None:
        fields: dict[str, Any] = {
            "bot_id": row.bot_id,
            "contact_id": contact_id,
            "meta": {"integrationId": row.id, "channel": row.kind},
        }
        conversation_id = conversations.create(ctx, fields).id
    if current is None:
        ctx.session.add(
            IntegrationSession(
                integration_id=row.id,
                contact_id=contact_id,
                conversation_id=conversation_id,
                last_message_at=now,
            )
        )
    else:
        current.conversation_id = conversation_id
        current.last_message_at = now
    ctx.session.flush()
    return conversation_id


def answer(runtime: Runtime, job: Job, finish: Callable[[Session], None]) -> None:
    """Run one CHANNEL_ANSWER job: generate the answer once, send it, and `finish` the job in
    the transaction that marks the update sent. Undeliverable: give up; other errors: retry."""
    payload = job.payload or {}
    scope = AccountScope(runtime, job.account_id)
    with scope.transaction() as ctx:
        event = ctx.session.get(IntegrationEvent, payload.get("eventId"))
        if event is None:
            raise Undeliverable("the update is gone (its integration was deleted)")
        if event.sent_at is not None:
            finish(ctx.session)
            return
        row = _integration(ctx.session, str(payload.get("kind")), event.integration_id)
        reply = event.reply
        conversation_id = event.conversation_id
        if reply is None and conversation_id is None:
            fingerprint = payload.get("fingerprint") or (
                f"{row.kind}:{payload.get('team')}:{payload.get('user')}"
            )
            conversation_id = _conversation_for(ctx, row, fingerprint, event.created_at)
            event.conversation_id = conversation_id
        ctx.session.expunge(row)
        event_id = event.id
    if reply is None:
        assert conversation_id is not None
        with _typing(runtime, row, payload):
            reply = _generate(scope, row, event_id, conversation_id, str(payload.get("text")))
    _send(runtime, row, payload, reply)
    with runtime.store.session() as session:
        sent = update(IntegrationEvent).where(IntegrationEvent.id == event_id)
        session.execute(sent.values(sent_at=now_ms()))
        finish(session)


def _generate(
    scope: AccountScope, row: Integration, event_id: str, conversation_id: str, text: str
) -> str:
    """The bot's answer, stored with the exchange and on the update in one transaction."""

    def keep(ctx: Ctx, reply: str) -> None:
        event = ctx.session.get(IntegrationEvent, event_id)
        assert event is not None
        event.reply = reply

    try:
        for item in completion.converse(scope, conversation_id, text, stored=keep):
            if item["type"] == "result":
                return str(item["data"]["text"]) or "…"
    except ObkError as exc:  # the bot cannot answer (a bad model, limits): say so once
        raise Undeliverable(f"the bot could not answer: {exc.message}") from None
    raise Undeliverable("the completion ended without an answer")


def _typing(
    runtime: Runtime, row: Integration, payload: dict[str, Any]
) -> AbstractContextManager[Any]:
    """What the channel shows while the answer is generated (Telegram: "typing…")."""
    if row.kind == "telegram":
        from openbotkit.services import telegram

        return telegram.typing(runtime, row, payload)
    return nullcontext()


def _send(runtime: Runtime, row: Integration, payload: dict[str, Any], reply: str) -> None:
    if row.kind == "telegram":
        from openbotkit.services import telegram

        return telegram.send(runtime, row, payload, reply)
    token = integrations.secret(runtime.vault, row, "bot_token")
    if token is None:
        raise Undeliverable("the integration has no botToken: set it to answer")
    try:
        slack.post_message(
            runtime.settings.slack_api_url,
            token,
            str(payload.get("channel")),
            reply,
            str(payload.get("threadTs") or ""),
        )
    except slack.SlackError as exc:
        message = f"sending the answer failed: {exc}"
        if exc.permanent:
            raise Undeliverable(message) from None
        report(runtime, row.id, message + " (will retry)")
        raise


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

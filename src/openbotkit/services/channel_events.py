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
has no idempotency key; WhatsApp's messages call has none either; Discord's answer edits the
deferred response in place, so a second send changes nothing).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from openbotkit.channels import ChannelError, discord, slack, whatsapp
from openbotkit.channels import email as email_channel
from openbotkit.errors import NotAuthenticated, ObkError
from openbotkit.ids import now_ms
from openbotkit.runtime import Runtime
from openbotkit.services import completion, contacts, conversations, integrations, telegram
from openbotkit.services.channel_updates import (
    Acknowledged,
    Undeliverable,
    detached,
    integration_row,
    json_object,
    report,
    sending_secret,
    store_once,
)
from openbotkit.services.context import AccountScope, Ctx
from openbotkit.store.tables import (
    Conversation,
    Integration,
    IntegrationEvent,
    IntegrationSession,
    Job,
)

log = logging.getLogger("openbotkit.channels")
# Channels that show the person a pending answer until it is sent, and what replaces it when the
# bot cannot answer (_notify_failure).
PENDING_KINDS = frozenset({"discord"})
FAILURE_NOTICE = "Sorry, I could not answer this time."


def receive_slack(
    runtime: Runtime, integration_id: str, headers: Mapping[str, str], body: bytes
) -> Acknowledged:
    """One Events API request: verified against the integration's signing secret, answered
    at once (the challenge, or an acknowledgement), its message queued to be answered."""
    row = detached(runtime, "slack", integration_id)
    signing = integrations.secret(runtime.vault, row, "signing_secret")
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
    envelope = json_object(body)
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
    store_once(runtime, row, mention.event_id, payload)
    return Acknowledged({})


def receive_discord(
    runtime: Runtime, integration_id: str, headers: Mapping[str, str], body: bytes
) -> Acknowledged:
    """One interaction, verified against the application's public key: a PING gets its PONG,
    the integration's slash command a deferred response at once (its answer follows from a
    worker), anything else a note only the asker sees."""
    row = detached(runtime, "discord", integration_id)
    public_key = str((row.settings or {}).get("public_key") or "")
    if not public_key:
        raise NotAuthenticated("the integration has no publicKey: set it to receive interactions")
    try:
        discord.verify(
            public_key,
            headers.get("x-signature-timestamp"),
            headers.get("x-signature-ed25519"),
            body,
        )
    except discord.BadSignature as exc:
        raise NotAuthenticated(f"Discord signature refused: {exc}") from None
    interaction = json_object(body)
    if interaction.get("type") == discord.PING:
        return Acknowledged({"type": discord.PONG})
    handle = discord.handle_of(row.settings)
    command = discord.command_of(interaction, handle)
    if command is None:
        return Acknowledged(discord.ephemeral(f"This bot answers /{handle} with a question."))
    if not integrations.allowed(row, command.user, command.channel, command.guild):
        log.info("discord integration %s: refused %s (not in allowFrom)", row.id, command.user)
        return Acknowledged(discord.ephemeral("You are not allowed to ask this bot."))
    payload = {
        "team": command.application_id,
        "user": command.user,
        "channel": command.channel,
        "guild": command.guild,
        "text": command.text,
        "applicationId": command.application_id,
        # The interaction token can edit the bot's answer for 15 minutes: sealed like a secret.
        "token": runtime.vault.encrypt(command.token).decode(),
    }
    store_once(runtime, row, command.interaction_id, payload)
    return Acknowledged({"type": discord.DEFERRED_CHANNEL_MESSAGE})


def whatsapp_challenge(runtime: Runtime, integration_id: str, params: dict[str, str]) -> str:
    """Meta's subscription check: its challenge, echoed when the verify token is ours."""
    row = detached(runtime, "whatsapp", integration_id)
    challenge = whatsapp.handshake(params, (row.settings or {}).get("verify_token"))
    if challenge is None:
        raise NotAuthenticated(
            "hub.verify_token does not match the integration's verifyToken (or hub.mode is not"
            " subscribe)"
        )
    return challenge


def receive_whatsapp(
    runtime: Runtime, integration_id: str, headers: Mapping[str, str], body: bytes
) -> Acknowledged:
    """One webhook delivery, verified against the app secret: each text message to the
    integration's number is queued to be answered once; statuses and the rest are
    acknowledged."""
    row = detached(runtime, "whatsapp", integration_id)
    app_secret = integrations.secret(runtime.vault, row, "app_secret")
    if app_secret is None:
        raise NotAuthenticated("the integration has no appSecret: set it to receive messages")
    try:
        whatsapp.verify(app_secret, headers.get("x-hub-signature-256"), body)
    except whatsapp.BadSignature as exc:
        raise NotAuthenticated(f"WhatsApp signature refused: {exc}") from None
    number = str((row.settings or {}).get("phone_number_id") or "")
    for text in whatsapp.texts_of(json_object(body)):
        if number and text.phone_number_id != number:
            continue  # one app's webhook serves all its numbers: another integration's
        if not integrations.allowed(row, text.user, "+" + text.user):
            log.info("whatsapp integration %s: ignored %s (not in allowFrom)", row.id, text.user)
            continue
        payload = {
            "team": text.phone_number_id or number,
            "user": text.user,
            "text": text.text,
            "messageId": text.message_id,
        }
        store_once(runtime, row, text.message_id, payload)
    return Acknowledged({})


def _conversation_for(
    ctx: Ctx,
    row: Integration,
    fingerprint: str,
    now: int,
    *,
    thread: str | None = None,
    contact: dict[str, Any] | None = None,
) -> str:
    """The contact's conversation with the integration's bot: the one the channel's own
    threading names (`thread`: the conversation of the mail a reply answers), else the current
    one if they wrote within sessionDuration, else a new one. The contact is stored, with the
    `contact` fields the channel knows, if contactCollection is on (the default); the
    conversation names it either way."""
    if row.bot_id is None:
        raise Undeliverable("the integration has no bot: set its botId")
    contact_id = contacts.contact_id(ctx.account_id, fingerprint)
    if row.contact_collection is not False:
        contact_id = contacts.ensure(ctx, fingerprint, contact or {}).id
    current = ctx.session.get(IntegrationSession, (row.id, contact_id))
    conversation_id = None
    if thread is not None and ctx.session.get(Conversation, thread) is not None:
        conversation_id = thread
    elif (
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
        row = integration_row(ctx.session, str(payload.get("kind")), event.integration_id)
        ctx.session.expunge(row)
        reply, conversation_id, event_id = event.reply, event.conversation_id, event.id
    if reply is None:
        try:
            if conversation_id is None:
                conversation_id = _start(scope, row, event_id, payload)
            with _typing(runtime, row, payload):
                reply = _generate(scope, row, event_id, conversation_id, str(payload.get("text")))
        except Undeliverable:
            _notify_failure(runtime, row, payload)
            raise
    _send(runtime, row, payload, reply)
    with runtime.store.session() as session:
        sent = update(IntegrationEvent).where(IntegrationEvent.id == event_id)
        session.execute(sent.values(sent_at=now_ms()))
        finish(session)


def _start(scope: AccountScope, row: Integration, event_id: str, payload: dict[str, Any]) -> str:
    """The conversation the update goes to (the contact's current one, a thread's, or a new
    one), kept on the update so a retry asks in the same place."""
    with scope.transaction() as ctx:
        event = ctx.session.get(IntegrationEvent, event_id)
        assert event is not None
        if event.conversation_id is not None:
            return event.conversation_id
        chat_user = f"{row.kind}:{payload.get('team')}:{payload.get('user')}"
        fingerprint = str(payload.get("fingerprint") or chat_user)
        event.conversation_id = _conversation_for(
            ctx,
            row,
            fingerprint,
            event.created_at,
            thread=_threaded(ctx, row, payload),
            contact=payload.get("contact"),
        )
        return event.conversation_id


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
        return telegram.typing(runtime, row, payload)
    return nullcontext()


def _notify_failure(runtime: Runtime, row: Integration, payload: dict[str, Any]) -> None:
    """Where the channel shows the person a pending answer (Discord's "thinking…" until the
    deferred reply is edited), replace it with a short notice when the bot cannot answer, instead
    of leaving it pending until the interaction expires. Best effort: the job fails either way,
    and its error is the integration's lastError."""
    if row.kind not in PENDING_KINDS:
        return
    try:
        SENDERS[row.kind](runtime, row, payload, FAILURE_NOTICE)
    except (ChannelError, Undeliverable) as exc:
        log.warning("integration %s: the failure notice was not sent either: %s", row.id, exc)


def _send(runtime: Runtime, row: Integration, payload: dict[str, Any], reply: str) -> None:
    """Deliver `reply` on the integration's channel. A failure retrying cannot fix is
    Undeliverable; any other is kept as lastError and raised, for the job to retry."""
    try:
        SENDERS[row.kind](runtime, row, payload, reply)
    except ChannelError as exc:
        message = f"sending the answer failed: {exc}"
        if exc.permanent:
            raise Undeliverable(message) from None
        report(runtime, row.id, message + " (will retry)")
        raise


def _send_slack(runtime: Runtime, row: Integration, payload: dict[str, Any], reply: str) -> None:
    slack.post_message(
        runtime.settings.slack_api_url,
        sending_secret(runtime, row, "bot_token", "botToken"),
        str(payload.get("channel")),
        reply,
        str(payload.get("threadTs") or ""),
    )


def _send_discord(runtime: Runtime, row: Integration, payload: dict[str, Any], reply: str) -> None:
    token = runtime.vault.decrypt(
        str(payload.get("token")).encode(), secret_id=f"{row.id}.interaction"
    )
    discord.edit_original(
        runtime.settings.discord_api_url, str(payload.get("applicationId")), token, reply
    )


def _send_whatsapp(runtime: Runtime, row: Integration, payload: dict[str, Any], reply: str) -> None:
    whatsapp.send_text(
        runtime.settings.whatsapp_api_url,
        sending_secret(runtime, row, "access_token", "accessToken"),
        str(payload.get("team")),
        str(payload.get("user")),
        reply,
        str(payload.get("messageId") or ""),
    )


def _threaded(ctx: Ctx, row: Integration, payload: dict[str, Any]) -> str | None:
    """The conversation of the nearest earlier update this one answers (payload `thread`:
    their update ids, nearest first; `threadEvents`: ids of updates the bot's own answers
    answered), or None."""
    for event_id in payload.get("threadEvents") or []:
        found = ctx.session.get(IntegrationEvent, event_id)
        if found is not None and found.integration_id == row.id and found.conversation_id:
            return found.conversation_id
    for key in payload.get("thread") or []:
        conversation_id = ctx.session.scalar(
            select(IntegrationEvent.conversation_id).where(
                IntegrationEvent.integration_id == row.id, IntegrationEvent.event_id == key
            )
        )
        if conversation_id:
            return conversation_id
    return None


def _email_integrations(session: Session, address: str) -> list[Integration]:
    """The email integrations whose address this is (in any account: the address routes)."""
    wanted = address.strip().lower()
    rows = session.scalars(select(Integration).where(Integration.kind == "email")).all()
    return [r for r in rows if str((r.settings or {}).get("address", "")).lower() == wanted]


def email_accepts(runtime: Runtime, address: str) -> bool:
    """Whether mail to `address` reaches an email integration (the listener's RCPT check)."""
    with runtime.store.session(write=False) as session:
        return bool(_email_integrations(session, address))


def receive_email(
    runtime: Runtime, raw: bytes, recipients: Sequence[str], mail_from: str = ""
) -> int:
    """One inbound mail, for each integration it is addressed to: the sender checked against
    allowFrom (the address, or `@domain`), the mail stored once by its Message-ID and its
    answer queued. Returns how many answers were queued. BadMail: refuse it."""
    inbound = email_channel.parse(raw)
    with runtime.store.session(write=False) as session:
        rows = {r.id: r for a in recipients for r in _email_integrations(session, a)}
        for row in rows.values():
            session.expunge(row)
    if inbound.automatic or mail_from in ("", "<>"):
        log.info("email %s from %s: automatic, not answered", inbound.event_id, inbound.sender)
        return 0
    queued = 0
    for row in rows.values():
        bot_address = str((row.settings or {}).get("address", ""))
        if inbound.sender == bot_address:
            continue  # the bot's own answer, come back: answering would loop
        if not integrations.allowed(row, inbound.sender, "@" + inbound.domain):
            log.info("email integration %s: ignored %s (not in allowFrom)", row.id, inbound.sender)
            continue
        contact = {"email": inbound.sender, **({"name": inbound.name} if inbound.name else {})}
        payload = {
            "fingerprint": inbound.sender,
            "contact": contact,
            "text": inbound.text,
            "to": inbound.reply_to,
            "subject": inbound.subject,
            "messageId": inbound.message_id,
            "references": list(inbound.references),
            "thread": inbound.thread_keys,
            "threadEvents": [e for e in map(email_channel.replied_event, inbound.thread) if e],
        }
        queued += store_once(runtime, row, inbound.event_id, payload)
    return queued


def _send_email(runtime: Runtime, row: Integration, payload: dict[str, Any], reply: str) -> None:
    settings = row.settings or {}
    address, url = settings.get("address"), settings.get("smtp_url")
    if not address or not url:
        raise Undeliverable("the integration has no address or smtpUrl: set them to answer")
    server = email_channel.SmtpServer(
        url=str(url),
        username=str(settings.get("smtp_username") or ""),
        password=integrations.secret(runtime.vault, row, "smtp_password") or "",
    )
    answer = email_channel.Answer(
        to=str(payload.get("to")),
        subject=str(payload.get("subject") or ""),
        message_id=str(payload.get("messageId") or ""),
        references=tuple(str(r) for r in payload.get("references") or []),
    )
    own_id = email_channel.reply_id(str(payload.get("eventId")), str(address))
    message = email_channel.compose(answer, str(address), row.name or "", reply, own_id)
    email_channel.send(server, message)


# How each kind delivers an answer (the payload is what its receive_* stored).
SENDERS: dict[str, Callable[[Runtime, Integration, dict[str, Any], str], None]] = {
    "slack": _send_slack,
    "discord": _send_discord,
    "whatsapp": _send_whatsapp,
    "telegram": telegram.send,
    "email": _send_email,
}

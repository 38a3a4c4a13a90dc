"""Telegram integrations at work: polling (the default), the webhook, setup, and sending.

Without a public address a worker polls the bot with getUpdates (one worker per integration,
services/channel_polls.py); with OBK_PUBLIC_URL, `setup` registers a webhook with a secret
token and Telegram pushes each update to the server. Either way an update is stored once under
`{bot id}:{update_id}` and answered by a CHANNEL_ANSWER job (services/channel_events.py), and
the poll offset moves in the transaction that stores the updates before it.

Which messages are answered (channels/telegram.py `message_of`): every text message in a
private chat; in a group, those that mention the bot, reply to it, or are a command addressed
to it. `allowFrom` entries match the sender's user id, their username (with or without `@`), or
the chat's id (a group's, to let everyone in it in).
"""

from __future__ import annotations

import logging
import secrets as token_source
import threading
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

import httpx
from sqlalchemy.orm import Session

from openbotkit.channels import telegram
from openbotkit.errors import NotAuthenticated
from openbotkit.ids import now_ms
from openbotkit.runtime import Runtime
from openbotkit.services import channel_polls, channel_updates, integrations
from openbotkit.services.context import AccountScope
from openbotkit.store.tables import Integration, IntegrationEvent

log = logging.getLogger("openbotkit.channels")
# The longest a getUpdates waits for an update: well within the lease, which each poll renews.
MAX_LONG_POLL_S = 25
# After a poll that failed with an error that may clear (Telegram unreachable, flood control).
PAUSE_S = 3.0


def webhook_path(integration_id: str) -> str:
    return f"/v1/integration/telegram/{integration_id}/webhook"


def _bot(runtime: Runtime, row: Integration, client: httpx.Client | None = None) -> telegram.Bot:
    token = channel_updates.sending_secret(runtime, row, "bot_token", "botToken")
    return telegram.Bot(runtime.settings.telegram_api_url, token, client)


def _polled(row: Integration) -> bool:
    """Polled: it has a bot and a token, and setup registered no webhook for it."""
    return bool(
        row.kind == "telegram"
        and row.bot_id
        and (row.secrets or {}).get("bot_token")
        and not (row.settings or {}).get("webhook_url")
    )


def wanted(runtime: Runtime) -> list[str]:
    """The Telegram integrations to poll, in every account."""
    with runtime.store.session(write=False) as session:
        rows = session.query(Integration).filter(Integration.kind == "telegram").all()
        return [row.id for row in rows if _polled(row)]


def _still_polled(runtime: Runtime, integration_id: str) -> bool:
    with runtime.store.session(write=False) as session:
        row = session.get(Integration, integration_id)
        return row is not None and _polled(row)


def _long_poll_s(lease_ms: int) -> int:
    return max(1, min(MAX_LONG_POLL_S, lease_ms // 3000))


def poll(
    runtime: Runtime,
    integration_id: str,
    holder: str,
    cursor: str,
    lease_ms: int,
    stop: threading.Event,
) -> bool:
    """Poll one bot while this worker holds its lease (services/channel_polls.py). The cursor
    is `{bot id}:{next offset}`: a token changed to another bot starts that bot from its oldest
    waiting update. False when stopped on an error worth a pause (also its lastError)."""
    with runtime.store.session(write=False) as session:
        row = session.get(Integration, integration_id)
        if row is None or not _polled(row):
            return True
        session.expunge(row)
    sealed = (row.secrets or {}).get("bot_token")
    with httpx.Client() as client:
        try:
            bot = _bot(runtime, row, client)
            me = bot.get_me()
        except (telegram.TelegramError, channel_updates.Undeliverable) as exc:
            channel_updates.report(runtime, integration_id, f"getMe failed: {exc}")
            return False
        bot_id, username = int(me.get("id") or 0), str(me.get("username") or "")
        owner, _, offset = cursor.partition(":")
        next_offset = int(offset) if owner == str(bot_id) and offset.isdigit() else 0
        while not stop.is_set():
            try:
                updates = bot.get_updates(next_offset, _long_poll_s(lease_ms))
            except telegram.TelegramError as exc:
                if exc.code == 409 and not _still_polled(runtime, integration_id):
                    return True  # setup has just registered a webhook: nothing is wrong
                if exc.code == 409 and "webhook" in str(exc):  # set outside this installation
                    channel_updates.report(
                        runtime,
                        integration_id,
                        f"getUpdates refused: {exc}. Run setup: it deletes the webhook",
                    )
                    return False
                if exc.code == 409:  # another getUpdates: a dead holder's last poll, or a
                    # program outside this installation polling the same bot
                    channel_updates.report(
                        runtime,
                        integration_id,
                        f"getUpdates refused: {exc}. Is another program polling this bot?",
                    )
                if exc.permanent:
                    channel_updates.report(runtime, integration_id, f"getUpdates failed: {exc}")
                    return False
                log.warning("telegram integration %s: %s", integration_id, exc)
                updates = []
                stop.wait(PAUSE_S)
            if stop.is_set():
                return True  # the lease is being given up: what was fetched is fetched again
            if updates:
                next_offset = max(int(u["update_id"]) for u in updates) + 1
            kept = _store_updates(
                runtime,
                integration_id,
                holder,
                f"{bot_id}:{next_offset}",
                lease_ms,
                updates,
                (bot_id, username),
                sealed,
            )
            if not kept:
                log.info("telegram integration %s: no longer polled here", integration_id)
                return True
    return True


def _store_updates(
    runtime: Runtime,
    integration_id: str,
    holder: str,
    cursor: str,
    lease_ms: int,
    updates: list[dict[str, Any]],
    me: tuple[int, str],
    sealed: object,
) -> bool:
    """Store the answerable updates and move the cursor past them, in one transaction that
    only the lease's holder can commit; False when it cannot (the lease is lost, or the
    integration is gone, no longer polled, or has another token: `sealed` is the one this
    poller started with)."""
    with runtime.store.session() as session:
        if not channel_polls.advance(session, integration_id, holder, cursor, lease_ms):
            return False
        row = session.get(Integration, integration_id)
        if row is None or not _polled(row) or (row.secrets or {}).get("bot_token") != sealed:
            session.rollback()
            return False
        for update in updates:
            _store(session, row, update, me)
    return True


def _store(session: Session, row: Integration, update: dict[str, Any], me: tuple[int, str]) -> bool:
    """Store one update to be answered, if it is a message to answer from someone allowed."""
    message = telegram.message_of(update, *me)
    if message is None:
        return False
    if not integrations.allowed(
        row,
        str(message.user_id),
        message.username,
        "@" + message.username if message.username else "",
        str(message.chat_id),
    ):
        log.info("telegram integration %s: ignored %s (not in allowFrom)", row.id, message.user_id)
        return False
    payload = {
        "fingerprint": f"telegram:{message.user_id}",
        "user": str(message.user_id),
        "chatId": message.chat_id,
        "messageId": message.message_id,
        "text": message.text,
    }
    return channel_updates.store(session, row, f"{me[0]}:{message.update_id}", payload)


def receive(
    runtime: Runtime, integration_id: str, headers: Mapping[str, str], body: bytes
) -> channel_updates.Acknowledged:
    """One webhook delivery: its secret token checked, the update stored once."""
    row = channel_updates.detached(runtime, "telegram", integration_id)
    expected = integrations.secret(runtime.vault, row, "webhook_secret")
    try:
        telegram.verify_secret(expected, headers.get("x-telegram-bot-api-secret-token"))
    except telegram.BadSecret as exc:
        raise NotAuthenticated(f"Telegram webhook refused: {exc}") from None
    update = channel_updates.json_object(body)
    settings = row.settings or {}
    me = (int(settings.get("bot_user_id") or 0), str(settings.get("bot_username") or ""))
    with runtime.store.session() as session:
        current = channel_updates.integration_row(session, "telegram", integration_id)
        _store(session, current, update, me)
    return channel_updates.Acknowledged({})


def typing(
    runtime: Runtime, row: Integration, payload: dict[str, Any]
) -> AbstractContextManager[None]:
    """ "typing…" in the chat while the answer is generated."""
    return telegram.typing(_bot(runtime, row), int(payload["chatId"]))


def send(runtime: Runtime, row: Integration, payload: dict[str, Any], reply: str) -> None:
    """Send the answer, split at Telegram's limit, the first part as a reply to the question.
    Each part accepted is counted on the update, so a retry sends only the parts not sent."""
    bot = _bot(runtime, row)
    event_id = str(payload.get("eventId"))
    with runtime.store.session(write=False) as session:
        event = session.get(IntegrationEvent, event_id)
        done = (event.sent_parts or 0) if event is not None else 0
    parts = telegram.split(reply)
    for index in range(done, len(parts)):
        reply_to = int(payload["messageId"]) if index == 0 and payload.get("messageId") else None
        # A failure is a ChannelError: channel_events reports it and gives up or retries.
        bot.send_message(int(payload["chatId"]), parts[index], reply_to)
        with runtime.store.session() as session:
            sent = session.get(IntegrationEvent, event_id)
            if sent is not None:
                sent.sent_parts = index + 1


def setup(scope: AccountScope, row: Integration, out: dict[str, Any]) -> str | None:
    """Check the token with getMe; with OBK_PUBLIC_URL register the webhook (a new secret
    token, stored encrypted), else delete any webhook so that polling works. Fills `out`;
    returns the error, if any."""
    runtime = scope.runtime
    token = integrations.secret(runtime.vault, row, "bot_token")
    public = scope.settings.public_url
    out["mode"] = "webhook" if public else "polling"
    if token is None:
        out["message"] = "set botToken (from @BotFather), then run setup again"
        return None
    bot = telegram.Bot(scope.settings.telegram_api_url, token)
    try:
        me = bot.get_me()
    except telegram.TelegramError as exc:
        return f"the bot token was refused: {exc}"
    settings = dict(row.settings or {})
    secrets = dict(row.secrets or {})
    settings["bot_user_id"], settings["bot_username"] = str(me.get("id")), me.get("username")
    out["bot_user_id"], out["bot_username"] = str(me.get("id")), me.get("username")
    polled = {k: v for k, v in settings.items() if k != "webhook_url"}
    unsecret = {k: v for k, v in secrets.items() if k != "webhook_secret"}
    if not public:
        try:
            bot.delete_webhook()
        except telegram.TelegramError as exc:
            return f"deleting the webhook failed: {exc}"
        _save(scope, row.id, polled, unsecret)
        out["message"] = "the workers poll the bot for messages (no public address needed)"
        return None
    url = public.rstrip("/") + webhook_path(row.id)
    secret = token_source.token_urlsafe(32)
    sealed = runtime.vault.encrypt(secret).decode()
    # Stored first: from the moment Telegram has the webhook, its deliveries are let in, and
    # the workers' pollers stop (getUpdates is refused while a webhook is set).
    _save(scope, row.id, {**settings, "webhook_url": url}, {**secrets, "webhook_secret": sealed})
    try:
        bot.set_webhook(url, secret)
    except telegram.TelegramError as exc:
        _save(scope, row.id, polled, unsecret)  # polling goes on
        return f"registering the webhook failed: {exc}"
    out["webhook_url"] = url
    out["message"] = f"Telegram delivers the bot's messages to {url}"
    return None


def _save(
    scope: AccountScope, integration_id: str, settings: dict[str, Any], secrets: dict[str, Any]
) -> None:
    with scope.transaction() as ctx:
        current = integrations.get(ctx, "telegram", integration_id)
        current.settings, current.secrets = settings, secrets
        current.updated_at = now_ms()


CHANNEL = channel_polls.Channel("telegram", wanted, poll)

"""Telegram: the Bot API calls a bot needs, the updates it answers, and long answers split.

The Bot API is called with plain httpx rather than python-telegram-bot: a bot here needs six
methods (getMe, getUpdates, sendMessage, sendChatAction, setWebhook, deleteWebhook), each one
JSON POST to `{base}/bot{token}/{method}`. python-telegram-bot is built around its own asyncio
Application, which runs its own polling loop and keeps its own offset in memory; here the
polling is leased across workers and its offset is stored in the database with the updates it
confirms (services/channel_polls.py), and answers run in the durable job queue, so the library
would only wrap those six requests. The base is OBK_TELEGRAM_API_URL.

The token is part of every URL, so no error message here includes a URL, and httpx's request
log lines have the token masked.
"""

from __future__ import annotations

import hmac
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from openbotkit.channels import ChannelError

# Telegram refuses a message longer than this (in UTF-16 code units; see `split`).
MAX_MESSAGE = 4096
TIMEOUT_S = 10.0
# Telegram shows "typing…" for five seconds or until the next message: renewed within that.
TYPING_EVERY_S = 4.0
# Error codes another attempt cannot fix: a bad request, a refused token, a bot blocked by the
# user or removed from the group. 409 (a webhook is set, or another getUpdates runs) and 429
# (flood control) are not permanent: they can clear.
PERMANENT_CODES = frozenset({400, 401, 403, 404})
_TOKEN_IN_URL = re.compile(r"/bot[^/\s]+/")


class BadSecret(Exception):
    """A webhook request without the secret token setWebhook was given."""


class TelegramError(ChannelError):
    """A Bot API call failed; `permanent` when retrying cannot help; `code` is Telegram's."""

    def __init__(self, message: str, *, permanent: bool, code: int = 0) -> None:
        super().__init__(message, permanent=permanent)
        self.code = code


class _MaskToken(logging.Filter):
    """httpx logs each request's URL at INFO, and a Bot API URL carries the bot's token."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "/bot" in message:
            record.msg, record.args = _TOKEN_IN_URL.sub("/bot<token>/", message), None
        return True


logging.getLogger("httpx").addFilter(_MaskToken())


def verify_secret(expected: str | None, given: str | None) -> None:
    """Accept a webhook request only if X-Telegram-Bot-Api-Secret-Token is the stored one."""
    if not expected:
        raise BadSecret("the integration has no webhook secret: run setup")
    if not given:
        raise BadSecret("no secret token (X-Telegram-Bot-Api-Secret-Token)")
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise BadSecret("the secret token does not match")


class Bot:
    """One bot's Bot API, through one httpx client (kept alive between a poller's calls)."""

    def __init__(self, base_url: str, token: str, client: httpx.Client | None = None) -> None:
        self._url = f"{base_url.rstrip('/')}/bot{token}/"
        self._client = client

    def call(self, method: str, data: dict[str, Any], *, timeout_s: float = TIMEOUT_S) -> Any:
        """One Bot API call; its `result` when `ok`, else TelegramError (permanent or not)."""
        try:
            if self._client is not None:
                response = self._client.post(self._url + method, json=data, timeout=timeout_s)
            else:
                response = httpx.post(self._url + method, json=data, timeout=timeout_s)
        except httpx.HTTPError as exc:  # str(exc) may hold the URL, and so the token
            raise TelegramError(f"{method}: {type(exc).__name__}", permanent=False) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise TelegramError(
                f"{method}: HTTP {response.status_code}, not JSON",
                permanent=False,
                code=response.status_code,
            )
        if not body.get("ok"):
            code = int(body.get("error_code") or response.status_code)
            description = str(body.get("description") or f"HTTP {response.status_code}")
            raise TelegramError(
                f"{method}: {code} {description}", permanent=code in PERMANENT_CODES, code=code
            )
        return body.get("result")

    def get_me(self) -> dict[str, Any]:
        """Who the token is: the bot's id and username (checks the token works)."""
        me = self.call("getMe", {})
        return me if isinstance(me, dict) else {}

    def get_updates(self, offset: int, timeout_s: int) -> list[dict[str, Any]]:
        """Updates from `offset` on, waiting up to `timeout_s` for one (long polling). Asking
        from `offset` confirms every update before it: Telegram forgets them."""
        data = {"offset": offset, "timeout": timeout_s, "allowed_updates": ["message"]}
        found = self.call("getUpdates", data, timeout_s=timeout_s + TIMEOUT_S)
        return [u for u in found or [] if isinstance(u, dict)]

    def send_message(self, chat_id: int | str, text: str, reply_to: int | None) -> int:
        """Send `text` to the chat, as a reply to `reply_to` if given (and still there)."""
        data: dict[str, Any] = {"chat_id": chat_id, "text": text}
        if reply_to is not None:
            data["reply_to_message_id"] = reply_to
            data["allow_sending_without_reply"] = True
        sent = self.call("sendMessage", data)
        return int(sent.get("message_id", 0)) if isinstance(sent, dict) else 0

    def send_typing(self, chat_id: int | str) -> None:
        self.call("sendChatAction", {"chat_id": chat_id, "action": "typing"})

    def set_webhook(self, url: str, secret_token: str) -> None:
        self.call(
            "setWebhook",
            {"url": url, "secret_token": secret_token, "allowed_updates": ["message"]},
        )

    def delete_webhook(self) -> None:
        """Stop webhook delivery (getUpdates refuses to run while one is set). Updates
        waiting are kept for getUpdates."""
        self.call("deleteWebhook", {"drop_pending_updates": False})


@contextmanager
def typing(bot: Bot, chat_id: int | str) -> Iterator[None]:
    """Show "typing…" in the chat while the block runs. Best effort: a failed chat action
    never stops the answer."""
    done = threading.Event()

    def beat() -> None:
        while True:
            try:
                bot.send_typing(chat_id)
            except TelegramError as exc:
                logging.getLogger("openbotkit.channels").info("sendChatAction: %s", exc)
            if done.wait(TYPING_EVERY_S):
                return

    thread = threading.Thread(target=beat, name="obk-telegram-typing", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=TIMEOUT_S + 1)


@dataclass(frozen=True)
class Message:
    """A message the bot answers: who wrote what in which chat, and the message to reply to."""

    update_id: int
    chat_id: int
    chat_type: str
    message_id: int
    user_id: int
    username: str
    first_name: str
    text: str


def message_of(update: dict[str, Any], bot_id: int, bot_username: str) -> Message | None:
    """The message to answer in an update, or None.

    A private chat's every text message is answered. In a group (or supergroup) only a message
    addressed to the bot is: one that mentions it (`@bot_username`, or a mention of its user),
    replies to one of its messages, or is a command addressed to it (`/ask@bot_username`).
    Messages from bots (the bot's own included), edits, channel posts and messages without
    text are not answered.
    """
    message = update.get("message")
    if not isinstance(message, dict) or not isinstance(update.get("update_id"), int):
        return None
    sender = message.get("from")
    chat = message.get("chat")
    text = message.get("text")
    if not isinstance(sender, dict) or not isinstance(chat, dict) or not isinstance(text, str):
        return None
    if sender.get("is_bot"):
        return None
    chat_type = str(chat.get("type") or "")
    entities = [e for e in message.get("entities") or [] if isinstance(e, dict)]
    if chat_type != "private" and not _addressed(message, entities, bot_id, bot_username):
        return None
    question = _question(text, entities, bot_id, bot_username)
    if not question:
        return None
    return Message(
        update_id=int(update["update_id"]),
        chat_id=int(chat["id"]),
        chat_type=chat_type,
        message_id=int(message.get("message_id") or 0),
        user_id=int(sender["id"]),
        username=str(sender.get("username") or ""),
        first_name=str(sender.get("first_name") or ""),
        text=question,
    )


def _addressed(
    message: dict[str, Any], entities: list[dict[str, Any]], bot_id: int, bot_username: str
) -> bool:
    replied = message.get("reply_to_message")
    if isinstance(replied, dict) and (replied.get("from") or {}).get("id") == bot_id:
        return True
    text = str(message.get("text") or "")
    name = "@" + bot_username.lower()
    for entity in entities:
        part = _entity_text(text, entity).lower()
        kind = entity.get("type")
        if kind == "mention" and bot_username and part == name:
            return True
        if kind == "text_mention" and (entity.get("user") or {}).get("id") == bot_id:
            return True
        if kind == "bot_command" and bot_username and part.endswith(name):
            return True
    return False


def _question(text: str, entities: list[dict[str, Any]], bot_id: int, bot_username: str) -> str:
    """The text without the mentions of the bot and a leading command (`/ask`, `/start`).
    A bare `/start` (what Telegram sends when someone opens the bot) is asked as a greeting."""
    cut: list[tuple[int, int]] = []
    name = "@" + bot_username.lower()
    for entity in entities:
        part = _entity_text(text, entity).lower()
        kind = entity.get("type")
        own_mention = kind == "mention" and bot_username and part == name
        own_text_mention = kind == "text_mention" and (entity.get("user") or {}).get("id") == bot_id
        leading_command = kind == "bot_command" and entity.get("offset") == 0
        if own_mention or own_text_mention or leading_command:
            start, end = _span(text, entity)
            cut.append((start, end))
            if leading_command and part.split("@")[0] == "/start" and not text[end:].strip():
                return "Hello!"
    kept = text
    for start, end in sorted(cut, reverse=True):
        kept = kept[:start] + kept[end:]
    return " ".join(kept.split())


def _span(text: str, entity: dict[str, Any]) -> tuple[int, int]:
    """An entity's place in `text` as Python indexes: Telegram counts UTF-16 code units."""
    offset, length = int(entity.get("offset") or 0), int(entity.get("length") or 0)
    units = text.encode("utf-16-le")
    start = len(units[: offset * 2].decode("utf-16-le", errors="ignore"))
    end = len(units[: (offset + length) * 2].decode("utf-16-le", errors="ignore"))
    return start, end


def _entity_text(text: str, entity: dict[str, Any]) -> str:
    start, end = _span(text, entity)
    return text[start:end]


def split(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """`text` in parts Telegram accepts (at most `limit` UTF-16 code units each), cut at the
    last paragraph break, else line break, else space in a part's second half, else hard."""
    parts: list[str] = []
    rest = text.strip()
    while _units(rest) > limit:
        # The longest prefix within the limit (characters outside the BMP count twice).
        end = min(len(rest), limit)
        while _units(rest[:end]) > limit:
            end -= 1
        window = rest[:end]
        cut = -1
        for separator in ("\n\n", "\n", " "):
            found = window.rfind(separator)
            if found >= end // 2:
                cut = found
                break
        if cut == -1:
            parts.append(window)
            rest = rest[end:]
        else:
            parts.append(window[:cut].rstrip())
            rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return parts or ["…"]


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2

"""Slack: the Events API's request signature, the events a bot answers, and the Web API calls.

The Web API is called with plain httpx: a bot needs two methods (`auth.test` when it is set up,
`chat.postMessage` to answer), each one form-encoded POST with a bearer token, so slack_sdk
would add a dependency to wrap two requests. Its base is OBK_SLACK_API_URL.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any

import httpx

from openbotkit.channels import ChannelError

# Slack's replay window: a request signed more than five minutes ago (or ahead) is refused.
MAX_SKEW_S = 300
TIMEOUT_S = 10.0
# Web API errors that another attempt cannot fix: the token or the channel is wrong.
PERMANENT_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "no_permission",
        "missing_scope",
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "msg_too_long",
        "no_text",
        "invalid_arguments",
    }
)


class BadSignature(Exception):
    """The request is not Slack's: a missing, wrong or stale signature."""


class SlackError(ChannelError):
    """A Web API call failed; `permanent` when retrying cannot help."""


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's v0 signature: HMAC-SHA256 over `v0:{timestamp}:{body}` with the signing secret."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def verify(secret: str, timestamp: str | None, signed: str | None, body: bytes) -> None:
    """Accept the request only if `signed` (X-Slack-Signature) is the body's signature at
    `timestamp` (X-Slack-Request-Timestamp) and that is within the replay window."""
    if not timestamp or not signed:
        raise BadSignature("missing X-Slack-Signature or X-Slack-Request-Timestamp")
    try:
        sent = int(timestamp)
    except ValueError:
        raise BadSignature("X-Slack-Request-Timestamp is not a number") from None
    if abs(time.time() - sent) > MAX_SKEW_S:
        raise BadSignature("the request timestamp is more than five minutes away (a replay?)")
    if not hmac.compare_digest(signature(secret, timestamp, body), signed):
        raise BadSignature("the signature does not match the signing secret")


@dataclass(frozen=True)
class Mention:
    """A message the bot answers: who wrote what, where, and the thread to answer in."""

    event_id: str
    team: str
    user: str
    channel: str
    text: str
    thread_ts: str


def message_of(envelope: dict[str, Any]) -> Mention | None:
    """The message to answer in an `event_callback`: an `app_mention`, or a direct message
    (`message` in an `im` channel) from a person; None for everything else (bot messages, edits
    and deletions, joins, other event types)."""
    event = envelope.get("event")
    if envelope.get("type") != "event_callback" or not isinstance(event, dict):
        return None
    kind = event.get("type")
    if kind == "message":
        if event.get("channel_type") != "im" or event.get("subtype") is not None:
            return None
    elif kind != "app_mention":
        return None
    if event.get("bot_id") or not event.get("user"):
        return None  # the bot's own (or another bot's) message: answering would loop
    text = str(event.get("text") or "").strip()
    if not text:
        return None
    # A mention in a channel is answered in its thread; a direct message in place, unless it
    # was itself written in a thread.
    thread = event.get("thread_ts") or (event.get("ts") if kind == "app_mention" else None)
    return Mention(
        event_id=str(envelope.get("event_id") or f"{event.get('channel')}:{event.get('ts')}"),
        team=str(envelope.get("team_id") or event.get("team") or ""),
        user=str(event["user"]),
        channel=str(event.get("channel") or ""),
        text=text,
        thread_ts=str(thread or ""),
    )


def strip_mentions(text: str) -> str:
    """The question without the `<@U0123>` mentions Slack writes into the text."""
    words = [w for w in text.split() if not (w.startswith("<@") and w.endswith(">"))]
    return " ".join(words).strip()


def call(base_url: str, method: str, token: str, data: dict[str, str]) -> dict[str, Any]:
    """One Web API call; its JSON body when `ok`, else SlackError (permanent or not)."""
    url = base_url.rstrip("/") + "/" + method
    try:
        response = httpx.post(
            url, data=data, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT_S
        )
    except httpx.HTTPError as exc:
        raise SlackError(f"{method}: {type(exc).__name__}: {exc}", permanent=False) from None
    if response.status_code >= 500 or response.status_code == 429:
        raise SlackError(f"{method}: HTTP {response.status_code}", permanent=False)
    try:
        body = response.json()
    except ValueError:
        raise SlackError(
            f"{method}: HTTP {response.status_code}, not JSON", permanent=False
        ) from None
    if not isinstance(body, dict) or not body.get("ok"):
        error = str(body.get("error") if isinstance(body, dict) else "") or "unknown_error"
        raise SlackError(f"{method}: {error}", permanent=error in PERMANENT_ERRORS)
    return body


def post_message(base_url: str, token: str, channel: str, text: str, thread_ts: str) -> str:
    """Answer in `channel` (in the thread `thread_ts` names, if any); returns the message's ts."""
    data = {"channel": channel, "text": text}
    if thread_ts:
        data["thread_ts"] = thread_ts
    body = call(base_url, "chat.postMessage", token, data)
    return str(body.get("ts") or "")


def auth_test(base_url: str, token: str) -> dict[str, Any]:
    """Who the token is (team, bot user): checks it works."""
    return call(base_url, "auth.test", token, {})

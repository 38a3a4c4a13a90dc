"""Discord: HTTP interactions' Ed25519 signature, the slash command a bot answers, and the
REST calls that register the command and deliver the answer.

Discord posts every interaction to the application's Interactions Endpoint URL, signed with the
application's Ed25519 key (X-Signature-Ed25519 over X-Signature-Timestamp + body); the check is
PyNaCl's, the one Discord's own examples use. A slash command must be answered within three
seconds, so it gets a deferred response (type 5, "thinking…") at once and the answer replaces
it later through the interaction's webhook, which takes the interaction token instead of the bot
token and stays valid for 15 minutes.

The REST API is called with plain httpx: a bot needs three calls (`GET /users/@me` and
`POST /applications/{id}/commands` in setup, the webhook PATCH to answer); discord.py is a
gateway client and would add a long-running connection this server does not want. Its base is
OBK_DISCORD_API_URL.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import httpx
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from openbotkit.channels import ChannelError

# Discord sets no window of its own; a request signed more than five minutes ago (or ahead) is
# refused as a replay, as Slack's are.
MAX_SKEW_S = 300
TIMEOUT_S = 10.0
# Interaction types (Discord's numbering) and the responses used here.
PING = 1
APPLICATION_COMMAND = 2
PONG = 1
CHANNEL_MESSAGE = 4
DEFERRED_CHANNEL_MESSAGE = 5
EPHEMERAL = 1 << 6
# A message's content is at most 2000 characters.
MAX_CONTENT = 2000
DEFAULT_HANDLE = "ask"
# The slash command's single option: the question.
OPTION = "question"
COMMAND_NAME = re.compile(r"^[-_a-z0-9]{1,32}$")


class BadSignature(Exception):
    """The request is not Discord's: a missing, wrong or stale signature."""


class DiscordError(ChannelError):
    """A REST call failed; `permanent` when retrying cannot help."""


def verify(public_key: str, timestamp: str | None, signed: str | None, body: bytes) -> None:
    """Accept the request only if `signed` (X-Signature-Ed25519, hex) is the application key's
    signature of `timestamp` (X-Signature-Timestamp) + body, and that is within the window."""
    if not timestamp or not signed:
        raise BadSignature("missing X-Signature-Ed25519 or X-Signature-Timestamp")
    try:
        sent = int(timestamp)
    except ValueError:
        raise BadSignature("X-Signature-Timestamp is not a number") from None
    if abs(time.time() - sent) > MAX_SKEW_S:
        raise BadSignature("the request timestamp is more than five minutes away (a replay?)")
    try:
        key = VerifyKey(bytes.fromhex(public_key))
    except ValueError:
        raise BadSignature("the integration's publicKey is not a 32-byte hex key") from None
    try:
        key.verify(timestamp.encode() + body, bytes.fromhex(signed))
    except (BadSignatureError, ValueError):
        raise BadSignature("the signature does not match the application's public key") from None


def handle_of(settings: dict[str, Any] | None) -> str:
    """The slash command's name: the integration's `handle` without a leading slash."""
    return str((settings or {}).get("handle") or DEFAULT_HANDLE).lstrip("/").strip().lower()


@dataclass(frozen=True)
class Command:
    """A slash command to answer: who asked what, where, and the token to answer with."""

    interaction_id: str
    application_id: str
    token: str
    guild: str
    channel: str
    user: str
    text: str


def command_of(interaction: dict[str, Any], handle: str) -> Command | None:
    """The question in an APPLICATION_COMMAND interaction for `handle`; None for another
    command or a command without a question."""
    data = interaction.get("data")
    if interaction.get("type") != APPLICATION_COMMAND or not isinstance(data, dict):
        return None
    if str(data.get("name") or "").lower() != handle:
        return None
    # In a server the user is under `member`, in a direct message at the top.
    member = interaction.get("member")
    user = (member.get("user") if isinstance(member, dict) else None) or interaction.get("user")
    if not isinstance(user, dict) or not user.get("id"):
        return None
    words = []
    for option in data.get("options") or []:
        if isinstance(option, dict) and isinstance(option.get("value"), str):
            words.append(option["value"])
    text = " ".join(words).strip()
    if not text:
        return None
    return Command(
        interaction_id=str(interaction.get("id") or ""),
        application_id=str(interaction.get("application_id") or ""),
        token=str(interaction.get("token") or ""),
        guild=str(interaction.get("guild_id") or ""),
        channel=str(interaction.get("channel_id") or ""),
        user=str(user["id"]),
        text=text,
    )


def ephemeral(content: str) -> dict[str, Any]:
    """An immediate reply only the asker sees (for a refusal or an unknown command)."""
    return {"type": CHANNEL_MESSAGE, "data": {"content": content, "flags": EPHEMERAL}}


def _request(
    base_url: str, method: str, path: str, *, token: str | None = None, json: Any = None
) -> Any:
    """One REST call; its JSON body (None for 204), else DiscordError (permanent or not)."""
    headers = {"Authorization": f"Bot {token}"} if token else {}
    url = base_url.rstrip("/") + path
    # What an error names: the webhook's path holds the interaction token, which it must not.
    where = "/webhooks/…" if path.startswith("/webhooks/") else path
    try:
        response = httpx.request(method, url, json=json, headers=headers, timeout=TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise DiscordError(
            f"{method} {where}: {type(exc).__name__}: {exc}", permanent=False
        ) from None
    try:
        body = response.json() if response.content else None
    except ValueError:
        body = None
    if response.status_code < 300:
        return body
    detail = ""
    if isinstance(body, dict):
        detail = f": {body.get('message')} (code {body.get('code')})"
    # 429 and 5xx are worth another attempt; 401 (the token), 403 (access), 404 (an expired
    # interaction token) and a refused body are not.
    permanent = response.status_code != 429 and response.status_code < 500
    raise DiscordError(
        f"{method} {where}: HTTP {response.status_code}{detail}", permanent=permanent
    )


def edit_original(base_url: str, application_id: str, token: str, content: str) -> None:
    """Replace the deferred response with the answer. Mentions in it ping nobody."""
    if len(content) > MAX_CONTENT:
        content = content[: MAX_CONTENT - 1] + "…"
    body = {"content": content, "allowed_mentions": {"parse": []}}
    _request(base_url, "PATCH", f"/webhooks/{application_id}/{token}/messages/@original", json=body)


def current_user(base_url: str, bot_token: str) -> dict[str, Any]:
    """The bot user the token belongs to: checks it works."""
    return dict(_request(base_url, "GET", "/users/@me", token=bot_token) or {})


def register_command(base_url: str, bot_token: str, application_id: str, name: str) -> str:
    """Create (or, by its name, update) the global slash command `/name question:`; its id."""
    command = {
        "name": name,
        "type": 1,
        "description": "Ask the bot a question",
        "options": [{"type": 3, "name": OPTION, "description": "Your question", "required": True}],
    }
    made = _request(
        base_url, "POST", f"/applications/{application_id}/commands", token=bot_token, json=command
    )
    return str((made or {}).get("id") or "")

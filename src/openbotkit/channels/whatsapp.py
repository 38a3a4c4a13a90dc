"""WhatsApp Cloud API: the webhook's handshake and signature, the messages a bot answers, and
the Graph API calls that answer.

Meta checks the webhook once with a GET (`hub.mode=subscribe`, the verify token pasted into its
console, a challenge to echo), then POSTs every change signed with the app secret
(X-Hub-Signature-256: HMAC-SHA256 of the body). The signature carries no timestamp, so a
replayed delivery is recognised by its message id instead (services/channel_events.py).

The Graph API is called with plain httpx: a bot needs two calls (the phone number's fields in
setup, `POST /{phone-number-id}/messages` to answer), and Meta keeps no Python SDK for the
Cloud API. Its base is OBK_WHATSAPP_API_URL.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

import httpx

from openbotkit.channels import ChannelError

TIMEOUT_S = 10.0
# A text message's body is at most 4096 characters.
MAX_BODY = 4096
# Graph error codes another attempt can get past: rate limits and temporary trouble.
TRANSIENT_CODES = frozenset({1, 2, 4, 17, 341, 80007, 130429, 131000, 131016, 131056, 133004})


class BadSignature(Exception):
    """The request is not Meta's: a missing or wrong signature."""


class WhatsAppError(ChannelError):
    """A Graph API call failed; `permanent` when retrying cannot help."""


def signature(app_secret: str, body: bytes) -> str:
    """X-Hub-Signature-256's value: `sha256=` and the body's HMAC-SHA256 with the app secret."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def verify(app_secret: str, signed: str | None, body: bytes) -> None:
    if not signed:
        raise BadSignature("missing X-Hub-Signature-256")
    if not hmac.compare_digest(signature(app_secret, body), signed.strip()):
        raise BadSignature("the signature does not match the app secret")


def handshake(params: dict[str, str], verify_token: str | None) -> str | None:
    """The challenge to echo when Meta's subscription check carries our verify token; None
    when it does not (or the integration has none)."""
    if params.get("hub.mode") != "subscribe" or not verify_token:
        return None
    if not hmac.compare_digest(params.get("hub.verify_token", ""), verify_token):
        return None
    return params.get("hub.challenge", "")


@dataclass(frozen=True)
class Text:
    """A text message to answer: its id, the business number it was sent to, and who wrote."""

    message_id: str
    phone_number_id: str
    user: str
    name: str
    text: str


def texts_of(change_set: dict[str, Any]) -> list[Text]:
    """The text messages in a webhook delivery (it may batch several); statuses (sent,
    delivered, read), reactions, media and every other change are left out."""
    found: list[Text] = []
    if change_set.get("object") != "whatsapp_business_account":
        return found
    for entry in _dicts(change_set.get("entry")):
        for change in _dicts(entry.get("changes")):
            value = change.get("value")
            if change.get("field") != "messages" or not isinstance(value, dict):
                continue
            metadata = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
            names = {
                str(c.get("wa_id")): str((c.get("profile") or {}).get("name") or "")
                for c in _dicts(value.get("contacts"))
            }
            for message in _dicts(value.get("messages")):
                body = message.get("text")
                if message.get("type") != "text" or not isinstance(body, dict):
                    continue
                text = str(body.get("body") or "").strip()
                sender = str(message.get("from") or "")
                if not text or not sender or not message.get("id"):
                    continue
                found.append(
                    Text(
                        message_id=str(message["id"]),
                        phone_number_id=str((metadata or {}).get("phone_number_id") or ""),
                        user=sender,
                        name=names.get(sender, ""),
                        text=text,
                    )
                )
    return found


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _request(
    base_url: str, method: str, path: str, token: str, *, json: Any = None
) -> dict[str, Any]:
    """One Graph API call; its JSON body, else WhatsAppError (permanent or not)."""
    url = base_url.rstrip("/") + path
    headers = {"Authorization": f"Bearer {token}"}
    try:
        response = httpx.request(method, url, json=json, headers=headers, timeout=TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise WhatsAppError(
            f"{method} {path}: {type(exc).__name__}: {exc}", permanent=False
        ) from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code < 300 and isinstance(body, dict):
        return body
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    detail = f": {error.get('message')} (code {code})" if isinstance(error, dict) else ""
    transient = response.status_code == 429 or response.status_code >= 500
    transient = transient or (isinstance(error, dict) and error.get("is_transient") is True)
    transient = transient or code in TRANSIENT_CODES
    raise WhatsAppError(
        f"{method} {path}: HTTP {response.status_code}{detail}", permanent=not transient
    )


def send_text(
    base_url: str, token: str, phone_number_id: str, to: str, text: str, reply_to: str
) -> str:
    """Answer `to` from the business number, quoting the message answered; the new message's
    id."""
    if len(text) > MAX_BODY:
        text = text[: MAX_BODY - 1] + "…"
    message: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "text",
        "text": {"body": text, "preview_url": False},
    }
    if reply_to:
        message["context"] = {"message_id": reply_to}
    body = _request(base_url, "POST", f"/{phone_number_id}/messages", token, json=message)
    sent = body.get("messages")
    return str(sent[0].get("id") or "") if isinstance(sent, list) and sent else ""


def phone_number(base_url: str, token: str, phone_number_id: str) -> dict[str, Any]:
    """The business number the access token answers from: checks both."""
    return _request(
        base_url, "GET", f"/{phone_number_id}?fields=display_phone_number,verified_name", token
    )

"""Email: inbound mail read, answers built and sent over SMTP, and the SMTP listener.

Inbound is an SMTP listener (aiosmtpd) rather than IMAP polling. A mail server delivers to it
the moment a mail arrives (no poll interval, no mailbox whose "seen" flags several workers must
agree on, so no poller lease), the installation keeps no mailbox password, one listener serves
every email integration (the recipient address picks the integration), and several listeners
(several `obk serve` processes or hosts behind one MX) are safe because each Message-ID is stored
once. It is what a self-hoster with a domain uses: an MX record pointing at the server, or a
forwarding rule or relay in the mail server they already run. A mailbox at a provider that can
only be read over IMAP (a plain Gmail or Fastmail account) is not polled by this version.

Answers go out through the integration's SMTP server (smtplib): STARTTLS when the server offers
it (a password is never sent in the clear to a server that does not, except on loopback),
implicit TLS with `smtps://`, a timeout on every connection.

Everything here is the wire format; storing, deduplicating and answering are the services'
(services/channel_events.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import re
import smtplib
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import formatdate, getaddresses
from typing import Any
from urllib.parse import urlsplit

from openbotkit.channels import ChannelError

log = logging.getLogger("openbotkit.channels")
# The largest mail the listener takes (aiosmtpd answers 552 above it, before reading it all).
MAX_MAIL_BYTES = 4 * 1024 * 1024
# The longest question passed to the bot: quoted history is already gone; this bounds the rest.
MAX_TEXT_CHARS = 8_000
MAX_SUBJECT_CHARS = 200
MAX_REFERENCES = 20
# Longer Message-IDs are stored as their sha256 (the event id column's width).
MAX_EVENT_ID = 191
TIMEOUT_S = 30.0
PORTS = {"smtp": 587, "smtps": 465}
# The bot's own replies carry Message-IDs it can recognise: `<obk.{eventId}@{domain}>`.
_REPLY_ID = re.compile(r"^<obk\.([A-Za-z0-9_-]{1,64})@[^>]*>$")
_ATTRIBUTION = re.compile(r"^[ \t]*On\b[^\n]{0,300}(?:\n[^\n]{0,300})?wrote:[ \t]*$", re.M)
_PREFIXES = re.compile(r"^(?:\s*(?:re|fwd?|aw|sv|wg)\s*:\s*)+", re.I)
_SEPARATORS = ("-----original message-----", "________________________________")
_AUTOMATIC_SENDERS = ("mailer-daemon", "postmaster", "no-reply", "noreply", "do-not-reply")


class BadMail(Exception):
    """A mail that cannot be answered as sent: too large, without a sender, without text."""


class SmtpError(ChannelError):
    """Sending an answer (or logging in to send one) failed."""


@dataclass(frozen=True)
class Inbound:
    """A received mail, read: who wrote what, and the thread it belongs to."""

    message_id: str  # as written, `<...>`; "" when the mail had none
    event_id: str  # what makes a redelivery the same update (the Message-ID, or a hash)
    sender: str  # the From address, lower case
    name: str  # the From display name
    reply_to: str  # where the answer goes: Reply-To, else From
    subject: str
    text: str  # the new text, quoted history and signature gone
    in_reply_to: str
    references: tuple[str, ...]
    automatic: bool  # a bounce, an auto-reply, a list mail: never answered

    @property
    def domain(self) -> str:
        return self.sender.rpartition("@")[2]

    @property
    def thread(self) -> list[str]:
        """The mails this one answers, nearest first (In-Reply-To, then References backwards)."""
        return list(dict.fromkeys(i for i in (self.in_reply_to, *reversed(self.references)) if i))

    @property
    def thread_keys(self) -> list[str]:
        """`thread` as the mails were stored (their event ids)."""
        return [event_key(i) for i in self.thread]


def event_key(message_id: str) -> str:
    """How a mail is known among an integration's updates: its Message-ID, or the sha256 of one
    too long to store."""
    if len(message_id) > MAX_EVENT_ID:
        return "sha256:" + hashlib.sha256(message_id.encode()).hexdigest()
    return message_id


def _one_line(value: str, limit: int) -> str:
    return " ".join(value.split())[:limit]


def _message_ids(value: str) -> list[str]:
    return re.findall(r"<[^<>\s]{1,300}>", value)


def parse(raw: bytes) -> Inbound:
    """Read a mail with the stdlib parser; BadMail when it cannot be answered."""
    if len(raw) > MAX_MAIL_BYTES:
        raise BadMail(f"the mail is larger than {MAX_MAIL_BYTES // (1024 * 1024)} MiB")
    try:
        msg = BytesParser(policy=policy.default).parsebytes(raw)
        senders = getaddresses([str(v) for v in msg.get_all("From") or []])
        reply_to = getaddresses([str(v) for v in msg.get_all("Reply-To") or []])
    except (ValueError, TypeError, IndexError, LookupError) as exc:
        raise BadMail(f"the mail's headers cannot be read: {exc}") from None
    addresses = [(n, a.strip().lower()) for n, a in senders if "@" in a]
    if len(addresses) != 1:
        raise BadMail("the mail has no single From address")
    name, sender = addresses[0]
    answer_to = next((a.strip() for _, a in reply_to if "@" in a), sender)
    message_id = next(iter(_message_ids(str(msg.get("Message-ID") or ""))), "")
    event_id = event_key(message_id) if message_id else "sha256:" + hashlib.sha256(raw).hexdigest()
    subject = _one_line(str(msg.get("Subject") or ""), MAX_SUBJECT_CHARS)
    # A mail with its question in the subject and nothing in the body is asked by its subject.
    text = strip_quoted(body_text(msg))[:MAX_TEXT_CHARS].strip() or _PREFIXES.sub("", subject)
    automatic = _automatic(msg, sender)
    if not text and not automatic:
        raise BadMail("the mail has no text to answer")
    return Inbound(
        message_id=message_id,
        event_id=event_id,
        sender=sender,
        name=_one_line(name, 200),
        reply_to=answer_to,
        subject=subject,
        text=text,
        in_reply_to=next(iter(_message_ids(str(msg.get("In-Reply-To") or ""))), ""),
        references=tuple(_message_ids(str(msg.get("References") or "")))[-MAX_REFERENCES:],
        automatic=automatic,
    )


def _automatic(msg: Message, sender: str) -> bool:
    """Mail no person wrote (RFC 3834): answering it would start a loop or spam a list."""
    auto = str(msg.get("Auto-Submitted") or "no").strip().lower()
    precedence = str(msg.get("Precedence") or "").strip().lower()
    return (
        auto != "no"
        or precedence in ("bulk", "junk", "list", "auto_reply")
        or msg.get("List-Id") is not None
        or msg.get("X-Autoreply") is not None
        or msg.get("X-Autorespond") is not None
        or sender.partition("@")[0] in _AUTOMATIC_SENDERS
    )


def body_text(msg: Message) -> str:
    """The mail's text: its text/plain part, else its HTML reduced to text."""
    if not isinstance(msg, EmailMessage):
        return ""
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError, UnicodeError, AssertionError):
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    if not isinstance(content, str):
        return ""
    if part.get_content_subtype() == "html":
        return html_text(content)
    return content


def html_text(html: str) -> str:
    """An HTML mail's own text: quoted history (blockquotes, Gmail's and Outlook's quote
    blocks), styles and scripts dropped, one line per block."""
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(html)
    for node in tree.css("head, style, script, blockquote, .gmail_quote, #divRplyFwdMsg"):
        node.decompose()
    for node in tree.css("br, p, div, li, tr, h1, h2, h3, h4, h5, h6"):
        node.insert_before("\n")
    root = tree.body or tree.root
    if root is None:
        return ""
    lines = (" ".join(line.split()) for line in str(root.text(separator="")).splitlines())
    return "\n".join(line for line in lines if line)


def strip_quoted(text: str) -> str:
    """The new part of a reply: `>` quoted lines, the history after "On ... wrote:" or an
    "Original Message" separator, and the signature after `-- ` go."""
    match = _ATTRIBUTION.search(text)
    if match:
        text = text[: match.start()]
    kept: list[str] = []
    for line in text.splitlines():
        bare = line.strip()
        if line.rstrip("\r") == "-- " or bare.lower() in _SEPARATORS:
            break
        if bare.startswith(">"):
            continue
        kept.append(line.rstrip())
    return "\n".join(kept).strip()


def reply_id(event_id: str, bot_address: str) -> str:
    """The Message-ID of the answer to an update: the same on every retry of the send, so a
    mail client shows a resent answer once."""
    return f"<obk.{event_id}@{bot_address.rpartition('@')[2] or 'localhost'}>"


def replied_event(message_id: str) -> str | None:
    """The update a Message-ID of one of the bot's answers answered (None: not the bot's)."""
    match = _REPLY_ID.match(message_id)
    return match.group(1) if match else None


@dataclass(frozen=True)
class Answer:
    """What the answer to an inbound mail needs of it (kept in the answering job's payload)."""

    to: str
    subject: str
    message_id: str
    references: tuple[str, ...]


def compose(answer: Answer, sender: str, sender_name: str, text: str, own_id: str) -> EmailMessage:
    """The answer: `Re:` subject, In-Reply-To and References naming the mail it answers."""
    msg = EmailMessage()
    msg["From"] = Address(display_name=_one_line(sender_name, 100), addr_spec=sender)
    msg["To"] = answer.to
    subject = _one_line(answer.subject, MAX_SUBJECT_CHARS)
    if not subject.lower().startswith("re:"):
        subject = f"Re: {subject}" if subject else "Re: your message"
    msg["Subject"] = subject
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = own_id
    if answer.message_id:
        msg["In-Reply-To"] = answer.message_id
        chain = [*answer.references, answer.message_id][-MAX_REFERENCES:]
        msg["References"] = " ".join(dict.fromkeys(chain))
    msg["Auto-Submitted"] = "auto-replied"  # RFC 3834: other robots do not answer it
    msg.set_content(text)
    return msg


@dataclass(frozen=True)
class SmtpServer:
    """Where answers are sent from: `smtp://host[:587]` (STARTTLS when offered) or
    `smtps://host[:465]`, and the login (none when username is empty)."""

    url: str
    username: str = ""
    password: str = ""


def check_url(url: str) -> str:
    """The URL if it names an SMTP server without credentials in it; ValueError says why."""
    parts = urlsplit(url)
    if parts.scheme not in PORTS:
        raise ValueError("must start with smtp:// (STARTTLS when offered) or smtps://")
    if not parts.hostname:
        raise ValueError("must name the SMTP server's host")
    if parts.username or parts.password:
        raise ValueError("must not hold credentials: set smtpUsername and smtpPassword")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("must be only a scheme, a host and a port")
    try:
        parts.port  # noqa: B018 (a bad port raises)
    except ValueError as exc:
        raise ValueError(f"has a bad port: {exc}") from None
    return url


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _classified(exc: Exception, doing: str) -> SmtpError:
    """An smtplib or network failure as an SmtpError: permanent for 5xx replies and refused
    certificates, to be retried for the rest (4xx, timeouts, refused connections)."""
    if isinstance(exc, smtplib.SMTPResponseException):
        raw = exc.smtp_error
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        message = f"{doing}: SMTP {exc.smtp_code} {text}".strip()
        return SmtpError(message, permanent=500 <= exc.smtp_code < 600)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        permanent = bool(codes) and all(500 <= c < 600 for c in codes)
        return SmtpError(f"{doing}: recipient refused {exc.recipients}", permanent=permanent)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return SmtpError(f"{doing}: the server's certificate was refused: {exc}", permanent=True)
    return SmtpError(f"{doing}: {type(exc).__name__}: {exc}", permanent=False)


def _connect(server: SmtpServer) -> smtplib.SMTP:
    """An SMTP session, encrypted where the server allows, logged in where a login is set."""
    check_url(server.url)
    parts = urlsplit(server.url)
    host = parts.hostname or ""
    port = parts.port or PORTS[parts.scheme]
    context = ssl.create_default_context()
    session: smtplib.SMTP
    if parts.scheme == "smtps":
        session = smtplib.SMTP_SSL(host, port, timeout=TIMEOUT_S, context=context)
    else:
        session = smtplib.SMTP(host, port, timeout=TIMEOUT_S)
    try:
        session.ehlo()
        if parts.scheme == "smtp" and session.has_extn("starttls"):
            session.starttls(context=context)
            session.ehlo()
        elif parts.scheme == "smtp" and server.password and not _loopback(host):
            raise SmtpError(
                f"{host}:{port} offers no STARTTLS: the password is not sent in the clear "
                "(use smtps:// or a server with STARTTLS)",
                permanent=True,
            )
        if server.username:
            session.login(server.username, server.password)
    except BaseException:
        session.close()
        raise
    return session


def send(server: SmtpServer, msg: EmailMessage) -> None:
    """Send one mail; SmtpError (permanent or not) when it was not accepted."""
    try:
        session = _connect(server)
        try:
            session.send_message(msg)
        finally:
            try:
                session.quit()
            except (OSError, smtplib.SMTPException):
                session.close()
    except SmtpError:
        raise
    except (OSError, smtplib.SMTPException) as exc:
        raise _classified(exc, "sending the answer") from None


def check_login(server: SmtpServer) -> None:
    """Connect, encrypt and log in as an answer would (setup's check); SmtpError if refused."""
    try:
        session = _connect(server)
        try:
            session.noop()
        finally:
            session.close()
    except SmtpError:
        raise
    except (OSError, smtplib.SMTPException) as exc:
        raise _classified(exc, "logging in to the SMTP server") from None


# The listener. `accepts(address)` says whether an integration has that address; `deliver`
# takes the mail (its raw bytes, the accepted recipients, the envelope sender) and raises BadMail
# to refuse it. Both do I/O: they run in a thread.
Accepts = Callable[[str], bool]
Deliver = Callable[[bytes, Sequence[str], str], None]


class _Handler:
    """aiosmtpd's handler: recipients checked one by one, each mail parsed and stored once."""

    def __init__(self, accepts: Accepts, deliver: Deliver) -> None:
        self.accepts = accepts
        self.deliver = deliver

    async def handle_RCPT(  # aiosmtpd's hook names
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= 20:
            return "452 4.5.3 Too many recipients"
        if not await asyncio.to_thread(self.accepts, address):
            return "550 5.1.1 No bot answers at this address"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content or b""
        if not isinstance(raw, bytes):
            raw = str(raw).encode("utf-8", "surrogateescape")
        try:
            await asyncio.to_thread(
                self.deliver, raw, list(envelope.rcpt_tos), str(envelope.mail_from or "")
            )
        except BadMail as exc:
            return f"550 5.6.0 {_one_line(str(exc), 200)}"
        except Exception:  # the database is briefly unavailable: the sender's server retries
            log.exception("a received mail could not be stored; the sender was told to retry")
            return "451 4.3.0 Temporary failure, try again later"
        return "250 OK: queued to be answered"


async def listen(host: str, port: int, accepts: Accepts, deliver: Deliver) -> asyncio.Server:
    """Start the SMTP listener on this event loop. The port is shared (SO_REUSEPORT) by every
    process of one `obk serve --workers N`: the kernel spreads connections among them."""
    from aiosmtpd.smtp import SMTP

    handler = _Handler(accepts, deliver)
    # Looked up once: aiosmtpd would otherwise resolve it on the event loop for each connection.
    fqdn = await asyncio.to_thread(socket.getfqdn)

    def protocol() -> SMTP:
        return SMTP(
            handler,
            hostname=fqdn,
            data_size_limit=MAX_MAIL_BYTES,
            enable_SMTPUTF8=True,
            ident="openbotkit",
        )

    loop = asyncio.get_running_loop()
    return await loop.create_server(protocol, host=host or None, port=port, reuse_port=True)

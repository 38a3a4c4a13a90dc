"""A real SMTP server on loopback (aiosmtpd) standing in for the bot's outbound mail server:
it checks the login, records every mail it accepts, and answers what the test queues."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.server.serving import free_port

USERNAME = "bot@bots.example.org"
PASSWORD = "smtp-password-5678"


@dataclass
class FakeSmtp:
    """`sent`: the mails accepted, parsed. `failures`: replies given to DATA, first to last,
    before mail is accepted again (such as "451 4.3.0 try later"). `logins`: every AUTH."""

    port: int = 0
    sent: list[EmailMessage] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    logins: list[tuple[str, bool]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def mails(self) -> list[EmailMessage]:
        with self.lock:
            return list(self.sent)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            if self.failures:
                return self.failures.pop(0)
            parsed = BytesParser(policy=policy.default).parsebytes(envelope.original_content)
            assert isinstance(parsed, EmailMessage)
            self.sent.append(parsed)
        return "250 OK"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == USERNAME
            and auth_data.password.decode() == PASSWORD
        )
        user = auth_data.login.decode() if isinstance(auth_data, LoginPassword) else ""
        with self.lock:
            self.logins.append((user, ok))
        # handled=False: aiosmtpd answers a refusal with 535 (else it says nothing at all).
        return AuthResult(success=ok, handled=False)


@contextmanager
def fake_smtp() -> Iterator[FakeSmtp]:
    fake = FakeSmtp(port=free_port())
    controller = Controller(
        fake,
        hostname="127.0.0.1",
        port=fake.port,
        authenticator=fake.authenticate,
        auth_require_tls=False,  # loopback, no certificate: the client allows it only here
    )
    controller.start()
    try:
        yield fake
    finally:
        controller.stop()

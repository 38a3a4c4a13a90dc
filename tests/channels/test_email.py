"""Email end to end, offline: mail sent with smtplib to the server's own SMTP listener, answers
sent through a real SMTP server on loopback (aiosmtpd), the real server with its worker and the
bundled model.

Attacks: the same mail delivered twice, replies that must stay in their thread, senders outside
allowFrom, unknown recipients, automatic mail (loops), oversized and malformed mail among good
ones, an SMTP server that fails or refuses, a wrong SMTP login, and secrets leaking into output.
"""

from __future__ import annotations

import json
import smtplib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from openbotkit.channels.email import html_text, parse, strip_quoted
from openbotkit.engine import Engine
from openbotkit.errors import InvalidInput
from openbotkit.models.providers import LLMProvider
from openbotkit.retrieval.embedders import Embedder
from openbotkit.server.app import create_app
from openbotkit.settings import Settings
from openbotkit.store.tables import Job, Message
from tests.channels.fake_smtp import PASSWORD, USERNAME, FakeSmtp, fake_smtp
from tests.server.serving import free_port, serve_in_thread

BOT = "bot@bots.example.org"
FAST_BOT = {"model": "smollm2/maxTokens=12/temperature=0", "backstory": "Answer briefly."}


@dataclass
class Served:
    engine: Engine
    listen_port: int
    smtp: FakeSmtp

    def run(self, name: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.engine.execute(name, data, account="alice")

    def mail(
        self,
        message_id: str,
        text: str,
        *,
        sender: str = "alice@example.org",
        subject: str = "Question",
        to: str = BOT,
        headers: dict[str, str] | None = None,
    ) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = f"Alice <{sender}>"
        msg["To"] = to
        msg["Subject"] = subject
        msg["Message-ID"] = message_id
        for name, value in (headers or {}).items():
            msg[name] = value
        msg.set_content(text)
        return msg

    def deliver(self, *messages: EmailMessage | bytes, to: str = BOT) -> list[str | None]:
        """Send each mail over one SMTP session to the listener, the way a mail server does;
        per mail, None when it was accepted, else the refusal."""
        results: list[str | None] = []
        with smtplib.SMTP("127.0.0.1", self.listen_port, timeout=30) as client:
            for message in messages:
                raw = message if isinstance(message, bytes) else message.as_bytes()
                try:
                    client.sendmail("sender@example.org", [to], raw)
                    results.append(None)
                except smtplib.SMTPResponseException as exc:
                    results.append(f"{exc.smtp_code} {exc.smtp_error.decode()}")
                    client.rset()
        return results


@pytest.fixture
def served(
    settings: Settings, local_embedder: Embedder, local_llm: LLMProvider
) -> Iterator[Served]:
    port = free_port()
    with fake_smtp() as smtp:
        configured = settings.model_copy(update={"email_listen": f"127.0.0.1:{port}"})
        engine = Engine(configured, embedder=local_embedder, local_llms=[local_llm])
        app = create_app(configured, engine, worker=True)
        with serve_in_thread(app):
            yield Served(engine, port, smtp)


def integration(served: Served, **fields: Any) -> str:
    bot = served.run("create_bot", FAST_BOT)["id"]
    data = {
        "botId": bot,
        "name": "Helpdesk",
        "address": BOT,
        "smtpUrl": served.smtp.url,
        "smtpUsername": USERNAME,
        "smtpPassword": PASSWORD,
        **fields,
    }
    return str(served.run("create_email_integration", data)["id"])


def wait_until(check: Callable[[], bool], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def jobs_done(engine: Engine) -> bool:
    with engine.store.session(write=False) as session:
        waiting = session.scalar(
            select(func.count()).select_from(Job).where(Job.status.in_(["queued", "running"]))
        )
    return waiting == 0


def answered(served: Served, count: int) -> None:
    wait_until(lambda: len(served.smtp.mails()) >= count and jobs_done(served.engine))
    time.sleep(1.5)  # a wrongly queued answer would have been sent by now
    assert len(served.smtp.mails()) == count


def user_texts(served: Served, conversation_id: str) -> list[str]:
    messages = served.run("list_conversation_messages", {"conversationId": conversation_id})
    return [m["text"] for m in messages["items"] if m["type"] == "user"]


def test_setup_checks_the_smtp_login_and_secrets_stay_write_only(served: Served) -> None:
    iid = integration(served, allowFrom="alice@example.org")
    fetched = served.run("fetch_email_integration", {"integrationId": iid})
    assert fetched["address"] == BOT and fetched["smtpUrl"] == served.smtp.url
    assert fetched["smtpUsername"] == USERNAME
    listed = served.run("list_email_integrations", {})
    for shown in (json.dumps(fetched), json.dumps(listed)):
        assert PASSWORD not in shown and "smtpPassword" not in shown
    with served.engine.runtime.store.session(write=False) as session:
        raw = session.execute(sa.text("SELECT secrets FROM integrations")).scalar_one()
    assert PASSWORD not in str(raw)
    setup = served.run("setup_email_integration", {"integrationId": iid})
    assert setup["ready"] is True and setup["runtime"] is True and setup["missing"] == []
    assert f"127.0.0.1:{served.listen_port}" in setup["message"]
    assert served.smtp.logins == [(USERNAME, True)]
    # A wrong password: setup says so, and keeps it as lastError.
    served.run("update_email_integration", {"integrationId": iid, "smtpPassword": "wrong"})
    setup = served.run("setup_email_integration", {"integrationId": iid})
    assert setup["ready"] is False and "535" in setup["error"]
    fetched = served.run("fetch_email_integration", {"integrationId": iid})
    assert "535" in fetched["lastError"]
    # Without an address and an SMTP server nothing can be answered: named as missing.
    bare = served.run("create_email_integration", {"name": "bare"})["id"]
    setup = served.run("setup_email_integration", {"integrationId": bare})
    assert setup["missing"] == ["botId", "address", "smtpUrl"] and setup["ready"] is False
    # Bad values are refused with the field named.
    with pytest.raises(InvalidInput) as bad_url:
        served.run("update_email_integration", {"integrationId": iid, "smtpUrl": "http://x"})
    assert "smtpUrl" in str(bad_url.value.details)
    with pytest.raises(InvalidInput) as creds:
        served.run("create_email_integration", {"smtpUrl": "smtp://u:p@mail.example.org"})
    assert "smtpUsername" in str(creds.value.details)
    with pytest.raises(InvalidInput) as bad_address:
        served.run("create_email_integration", {"address": "not an address"})
    assert "address" in str(bad_address.value.details)


def test_a_mail_is_answered_once_and_replies_stay_in_their_thread(served: Served) -> None:
    integration(served, sessionDuration=0)  # only threading keeps a conversation going
    first = served.mail("<q1@example.org>", "What is the capital of France?")
    # The same mail twice (a sending server's retry, a second MX): answered once.
    assert served.deliver(first, first) == [None, None]
    answered(served, 1)
    answer = served.smtp.mails()[0]
    assert answer["To"] == "alice@example.org"
    assert answer["From"].addresses[0].addr_spec == BOT
    assert answer["Subject"] == "Re: Question"
    assert answer["In-Reply-To"] == "<q1@example.org>"
    assert answer["References"] == "<q1@example.org>"
    assert answer["Auto-Submitted"] == "auto-replied"
    answer_id = str(answer["Message-ID"])
    assert answer_id.startswith("<obk.") and answer_id.endswith("@bots.example.org>")
    contacts = served.run("list_contacts", {})["items"]
    assert [(c["fingerprint"], c["email"], c["name"]) for c in contacts] == [
        ("alice@example.org", "alice@example.org", "Alice")
    ]
    conversations = served.run("list_conversations", {})["items"]
    assert len(conversations) == 1
    conversation = conversations[0]
    assert conversation["contactId"] == contacts[0]["id"]
    assert conversation["meta"]["channel"] == "email"
    bot_texts = [
        m["text"]
        for m in served.run("list_conversation_messages", {"conversationId": conversation["id"]})[
            "items"
        ]
        if m["type"] == "bot"
    ]
    assert answer.get_content().strip() == bot_texts[0].strip()

    # Alice answers the bot's answer, quoting it as mail clients do: the same conversation
    # (found through the answer's own Message-ID alone), only her new text is the question,
    # and the answer continues the References chain.
    reply = served.mail(
        "<q2@example.org>",
        "And of Italy?\n\nOn Mon, 7 Dec 2026 at 10:00, Helpdesk <bot@bots.example.org>\n"
        f"wrote:\n> {bot_texts[0]}\n> more\n",
        subject="Re: Question",
        headers={"In-Reply-To": answer_id, "References": answer_id},
    )
    assert served.deliver(reply) == [None]
    answered(served, 2)
    second = served.smtp.mails()[1]
    assert second["Subject"] == "Re: Question"
    assert second["In-Reply-To"] == "<q2@example.org>"
    assert second["References"].split() == [answer_id, "<q2@example.org>"]
    assert len(served.run("list_conversations", {})["items"]) == 1
    assert user_texts(served, conversation["id"]) == [
        "What is the capital of France?",
        "And of Italy?",
    ]
    # A reply that names only Alice's own earlier mail (her client did not keep the bot's
    # answer's id) still finds the thread through References.
    served.deliver(
        served.mail(
            "<q3@example.org>",
            "Thanks!",
            subject="Re: Question",
            headers={"References": "<unknown@example.org> <q2@example.org>"},
        )
    )
    answered(served, 3)
    assert len(served.run("list_conversations", {})["items"]) == 1
    # A new mail (no thread, sessionDuration 0): a new conversation.
    served.deliver(served.mail("<new@example.org>", "Another question", subject="Other"))
    answered(served, 4)
    assert len(served.run("list_conversations", {})["items"]) == 2
    with served.engine.store.session(write=False) as session:
        count = session.scalar(select(func.count()).select_from(Message))
    assert count == 8


def test_only_allowed_people_and_real_mail_are_answered(served: Served) -> None:
    integration(served, allowFrom="alice@example.org\n@team.example.org")
    results = served.deliver(
        served.mail("<m1@evil.example>", "hi", sender="mallory@evil.example"),
        served.mail("<m2@team.example.org>", "hi", sender="bob@team.example.org"),
        # An out-of-office answer and a mailing list's mail: never answered (no loops).
        served.mail("<m3@example.org>", "I am away", headers={"Auto-Submitted": "auto-replied"}),
        served.mail("<m4@example.org>", "digest", headers={"List-Id": "<news.example.org>"}),
    )
    assert results == [None, None, None, None]  # accepted, so nobody learns who is allowed
    answered(served, 1)
    assert served.smtp.mails()[0]["To"] == "bob@team.example.org"
    assert [c["fingerprint"] for c in served.run("list_contacts", {})["items"]] == [
        "bob@team.example.org"
    ]
    # Mail to an address no integration has is refused at RCPT.
    with (
        smtplib.SMTP("127.0.0.1", served.listen_port, timeout=30) as client,
        pytest.raises(smtplib.SMTPRecipientsRefused),
    ):
        client.sendmail("a@example.org", ["nobody@bots.example.org"], b"Subject: x\r\n\r\nhi")


def test_oversized_and_malformed_mail_is_refused_without_losing_the_rest(served: Served) -> None:
    integration(served)
    huge = served.mail("<big@example.org>", "x" * (5 * 1024 * 1024))
    no_sender = b"To: bot@bots.example.org\r\nSubject: who?\r\nMessage-ID: <n@x>\r\n\r\nhello\r\n"
    empty = served.mail("<empty@example.org>", "\n> only quoted text\n", subject="Re: ")
    html = EmailMessage()
    html["From"] = "alice@example.org"
    html["To"] = BOT
    html["Subject"] = "Styled"
    html["Message-ID"] = "<html@example.org>"
    html.set_content(
        "<html><head><style>p{color:red}</style></head><body><p>What is <b>2+2</b>?</p>"
        "<blockquote>earlier mail</blockquote></body></html>",
        subtype="html",
    )
    results = served.deliver(huge, no_sender, empty, html)
    assert results[0] is not None and results[0].startswith("552")
    assert results[1] is not None and results[1].startswith("550") and "From" in results[1]
    assert results[2] is not None and results[2].startswith("550") and "no text" in results[2]
    assert results[3] is None
    answered(served, 1)
    conversation = served.run("list_conversations", {})["items"][0]["id"]
    assert user_texts(served, conversation) == ["What is 2+2?"]


def test_a_failed_send_is_retried_then_reported(served: Served) -> None:
    iid = integration(served)
    served.smtp.failures.append("451 4.3.0 Mailbox busy, try later")
    served.deliver(served.mail("<r1@example.org>", "hello"))
    answered(served, 1)
    fetched = served.run("fetch_email_integration", {"integrationId": iid})
    assert "451" in fetched["lastError"] and "will retry" in fetched["lastError"]
    with served.engine.store.session(write=False) as session:
        bots = session.scalar(
            select(func.count()).select_from(Message).where(Message.type == "bot")
        )
        job = session.scalars(select(Job)).one()
    assert bots == 1  # the retry sent the stored answer, it did not generate another
    assert job.status == "succeeded" and job.attempts == 2
    # A permanent refusal (5xx) is not retried: reported, the job failed.
    served.smtp.failures.append("554 5.7.1 Message rejected")
    served.deliver(served.mail("<r2@example.org>", "hello again"))
    wait_until(lambda: jobs_done(served.engine))
    time.sleep(1.5)
    assert len(served.smtp.mails()) == 1
    fetched = served.run("fetch_email_integration", {"integrationId": iid})
    assert "554" in fetched["lastError"]
    with served.engine.store.session(write=False) as session:
        failed = session.scalars(select(Job).where(Job.status == "failed")).all()
    assert len(failed) == 1 and "554" in (failed[0].error or "")


def test_reading_mail() -> None:
    """What the bot is asked: the new text of a reply, from plain text or HTML."""
    gmail = "Yes, please.\n\nOn Mon, Dec 7, 2026 at 10:00 AM Bot <bot@x.org> wrote:\n> Shall I?\n"
    assert strip_quoted(gmail) == "Yes, please."
    outlook = "Sure\r\n\r\n-----Original Message-----\r\nFrom: Bot\r\nShall I?"
    assert strip_quoted(outlook) == "Sure"
    signed = "Thanks\n-- \nAlice, ACME"
    assert strip_quoted(signed) == "Thanks"
    assert html_text("<div>One</div><div>Two<br>Three</div><div class=gmail_quote>old</div>") == (
        "One\nTwo\nThree"
    )
    latin = (
        b"From: =?iso-8859-1?q?Andr=E9?= <andre@example.org>\r\nMessage-ID: <l@x>\r\n"
        b"Content-Type: text/plain; charset=iso-8859-1\r\n\r\nCaf\xe9?\r\n"
    )
    inbound = parse(latin)
    assert (inbound.name, inbound.sender, inbound.text) == ("André", "andre@example.org", "Café?")
    # The question only in the subject: asked by the subject.
    subject_only = b"From: a@example.org\r\nSubject: Re: Fwd: Opening hours?\r\n\r\n\r\n"
    assert parse(subject_only).text == "Opening hours?"

"""Telegram end to end, offline: a fake Bot API on loopback, the real server and workers (their
pollers and job loops), a real `obk worker` process killed mid-answer, and the bundled model.

Attacks: two workers polling one bot, a worker killed while sending, a webhook call with a
wrong secret token, one update delivered twice, a send that fails (for a while, for good),
group messages not addressed to the bot, senders outside allowFrom, answers longer than
Telegram takes.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from openbotkit.channels import telegram as wire
from openbotkit.engine import Engine
from openbotkit.models.providers import LLMProvider
from openbotkit.retrieval.embedders import Embedder
from openbotkit.server.app import create_app
from openbotkit.services import channel_updates
from openbotkit.services import telegram as service
from openbotkit.services.worker import Worker
from openbotkit.settings import Settings
from openbotkit.store.tables import IntegrationEvent, IntegrationPoller, Job, Message
from tests.channels.fake_telegram import BOT_ID, BOT_USERNAME, TOKEN, FakeTelegram, fake_telegram
from tests.cli.test_connector import OBK
from tests.conftest import TEST_MODEL
from tests.reliability.serving import log_tail, obk_env, spawn, stop
from tests.server.serving import serve_in_thread

FAST_BOT = {"model": "smollm2/maxTokens=12/temperature=0", "backstory": "Answer briefly."}
PUBLIC = "https://bots.example.org"
# Short leases: a dead worker's poll lease and answer job are taken over within seconds.
LEASE_S = 3.0


def wait_until(check: Callable[[], bool], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def jobs_done(engine: Engine) -> bool:
    with engine.store.session(write=False) as session:
        waiting = session.scalar(
            select(func.count()).select_from(Job).where(Job.status.in_(["queued", "running"]))
        )
    return waiting == 0


def count(engine: Engine, table: Any, *where: Any) -> int:
    with engine.store.session(write=False) as session:
        return int(session.scalar(select(func.count()).select_from(table).where(*where)) or 0)


def make_integration(engine: Engine, **fields: Any) -> str:
    bot = engine.execute("create_bot", FAST_BOT, account="alice")["id"]
    data = {"botId": bot, "botToken": TOKEN, **fields}
    return str(engine.execute("create_telegram_integration", data, account="alice")["id"])


def configured(settings: Settings, fake: FakeTelegram, **more: Any) -> Settings:
    return settings.model_copy(
        update={"telegram_api_url": fake.url, "job_lease_s": LEASE_S, **more}
    )


@dataclass
class Served:
    engine: Engine
    origin: str
    fake: FakeTelegram
    http: httpx.Client

    def run(self, name: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.engine.execute(name, data, account="alice")


@pytest.fixture
def served(
    settings: Settings, local_embedder: Embedder, local_llm: LLMProvider
) -> Iterator[Served]:
    """`obk serve` with its worker (job loop and pollers), polling: no public address."""
    with fake_telegram() as fake:
        engine = Engine(configured(settings, fake), embedder=local_embedder, local_llms=[local_llm])
        app = create_app(engine.settings, engine, worker=True)
        with serve_in_thread(app) as origin, httpx.Client(timeout=30) as http:
            yield Served(engine, origin, fake, http)


def test_polling_answers_a_private_message_with_typing_and_a_reply(served: Served) -> None:
    iid = make_integration(served.engine, sessionDuration=3_600_000)
    setup = served.run("setup_telegram_integration", {"integrationId": iid})
    assert setup["ready"] is True and setup["runtime"] is True and setup["mode"] == "polling"
    assert setup["botUsername"] == BOT_USERNAME and setup["botUserId"] == str(BOT_ID)
    assert "deleteWebhook" in served.fake.methods() and setup.get("webhookUrl") is None
    first = served.fake.push("What is the capital of France?")
    wait_until(lambda: len(served.fake.replies()) == 1 and jobs_done(served.engine))
    reply = served.fake.replies()[0]
    assert reply["chat_id"] == 7001 and reply["reply_to_message_id"] == first * 10
    methods = served.fake.methods()
    assert "sendChatAction" in methods
    assert methods.index("sendChatAction") < methods.index("sendMessage")
    # The person is a contact with their conversation, holding question and answer.
    contacts = served.run("list_contacts", {})["items"]
    assert [c["fingerprint"] for c in contacts] == ["telegram:7001"]
    conversations = served.run("list_conversations", {})["items"]
    assert len(conversations) == 1 and conversations[0]["contactId"] == contacts[0]["id"]
    assert conversations[0]["meta"] == {"integrationId": iid, "channel": "telegram"}
    messages = served.run("list_conversation_messages", {"conversationId": conversations[0]["id"]})
    texts = [(m["type"], m["text"]) for m in messages["items"]]
    assert texts == [("user", "What is the capital of France?"), ("bot", reply["text"])]
    # In a group only what is addressed to the bot is answered: a mention, a reply to it.
    group = {"id": -100555, "type": "supergroup", "title": "Team"}
    served.fake.push("just chatting among ourselves", chat=group)
    mention = f"@{BOT_USERNAME} and of Italy?"
    entities = [{"type": "mention", "offset": 0, "length": len(BOT_USERNAME) + 1}]
    asked = served.fake.push(mention, chat=group, entities=entities)
    bot_message = {"message_id": 5, "from": {"id": BOT_ID, "is_bot": True}, "chat": group}
    answered = served.fake.push("thanks!", chat=group, reply_to_message=bot_message)
    wait_until(lambda: len(served.fake.replies()) == 3 and jobs_done(served.engine))
    time.sleep(1.5)  # a wrongly queued answer would have been sent by now
    replies = served.fake.replies()
    assert [r["reply_to_message_id"] for r in replies[1:]] == [asked * 10, answered * 10]
    # The mention is not part of the question.
    with served.engine.store.session(write=False) as session:
        questions = session.scalars(select(Message.text).where(Message.type == "user")).all()
    assert "and of Italy?" in questions and mention not in questions
    # The offset is stored: every update pushed was confirmed, none is left at Telegram.
    with served.engine.store.session(write=False) as session:
        poller = session.get(IntegrationPoller, iid)
        assert poller is not None and poller.cursor == f"{BOT_ID}:{served.fake._next_id + 1}"
    assert served.fake.updates == []


def test_senders_outside_allow_from_are_ignored(served: Served) -> None:
    make_integration(served.engine, allowFrom="@alice, 7003")
    served.fake.push("hi", user=7002, username="mallory")
    served.fake.push("hi", user=7003, username="")
    served.fake.push("hi", user=7004, username="alice")
    wait_until(lambda: len(served.fake.replies()) == 2 and jobs_done(served.engine))
    time.sleep(1.5)
    assert sorted(r["chat_id"] for r in served.fake.replies()) == [7003, 7004]


def test_two_workers_polling_one_bot_answer_each_update_once(
    settings: Settings, local_embedder: Embedder, local_llm: LLMProvider
) -> None:
    """Two workers, each with its own engine and database connections, run side by side:
    one holds the poll lease (the fake never sees two getUpdates at once), both answer jobs,
    and every update is answered exactly once."""
    with fake_telegram() as fake:
        tuned = configured(settings, fake)
        engines = [Engine(tuned, embedder=local_embedder, local_llms=[local_llm]) for _ in range(2)]
        stop = threading.Event()
        loops = [
            threading.Thread(target=Worker(e.runtime, f"worker-{i}").run, args=(stop, 0.2))
            for i, e in enumerate(engines)
        ]
        try:
            make_integration(engines[0])
            for loop in loops:
                loop.start()
            pushed = [fake.push(f"question {n}", user=7100 + n) for n in range(4)]
            wait_until(lambda: len(fake.replies()) >= 4 and jobs_done(engines[0]))
            time.sleep(1.5)
            replies = fake.replies()
            assert sorted(r["reply_to_message_id"] for r in replies) == [u * 10 for u in pushed]
            assert fake.most_polling == 1
            with engines[0].store.session(write=False) as session:
                holders = session.scalars(select(IntegrationPoller.holder)).all()
                workers = set(session.scalars(select(Job.worker_id)).all())
            assert len(holders) == 1 and holders[0] in ("worker-0", "worker-1")
            assert count(engines[0], IntegrationEvent) == 4
            assert workers <= {"worker-0", "worker-1"}
        finally:
            stop.set()
            for loop in loops:
                if loop.is_alive():
                    loop.join(timeout=30)
            for engine in engines:
                engine.close()


def test_a_worker_killed_mid_answer_loses_nothing(
    settings: Settings,
    local_embedder: Embedder,
    local_llm: LLMProvider,
    cache_dir: Path,
    tmp_path: Path,
) -> None:
    """An `obk worker` process polls the bot, stores an update, generates its answer and is
    killed (SIGKILL) while sending it. Another update arrives while no worker runs. A new
    worker takes over the poll lease and the job once their leases run out: both updates are
    answered, once each, the first with the answer the dead worker generated."""
    with fake_telegram() as fake:
        tuned = configured(settings, fake)
        engine = Engine(tuned, embedder=local_embedder, local_llms=[local_llm])
        stop_live = threading.Event()
        live = threading.Thread(target=Worker(engine.runtime, "live").run, args=(stop_live, 0.2))
        try:
            iid = make_integration(engine)
            env = obk_env(
                tuned.home,
                OBK_TELEGRAM_API_URL=fake.url,
                OBK_JOB_LEASE_S=str(LEASE_S),
                OBK_DEFAULT_MODEL=TEST_MODEL,
                OBK_CACHE_DIR=str(cache_dir),
                **({"OBK_DATABASE_URL": tuned.database_url} if tuned.database_url else {}),
            )
            log = tmp_path / "worker.log"
            fake.stall.set()
            process = spawn([OBK, "worker", "--poll", "0.2"], env, log)
            try:
                first = fake.push("hello")
                deadline = time.monotonic() + 120
                while fake.stalled == 0:
                    assert process.poll() is None, log_tail(log)
                    assert time.monotonic() < deadline, log_tail(log)
                    time.sleep(0.05)
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=10)
            finally:
                stop(process)
            fake.stall.clear()
            assert fake.replies() == []
            with engine.store.session(write=False) as session:
                held = session.scalars(select(Job)).one()
                assert held.status == "running" and held.worker_id != "live"
                generated = session.scalars(select(IntegrationEvent)).one()
                assert generated.reply is not None and generated.sent_at is None
            second = fake.push("are you there?")
            live.start()
            wait_until(lambda: len(fake.replies()) == 2 and jobs_done(engine))
            time.sleep(1.5)
            replies = fake.replies()
            assert sorted(r["reply_to_message_id"] for r in replies) == [first * 10, second * 10]
            by_question = {r["reply_to_message_id"]: r["text"] for r in replies}
            assert by_question[first * 10] == generated.reply  # sent as stored, not regenerated
            with engine.store.session(write=False) as session:
                retried = session.get(Job, held.id)
                assert retried is not None and retried.status == "succeeded"
                assert retried.attempts == 2 and retried.worker_id == "live"
                poller = session.get(IntegrationPoller, iid)
                assert poller is not None and poller.holder == "live"
                assert poller.cursor == f"{BOT_ID}:{second + 1}"
            assert count(engine, Message, Message.type == "bot") == 2
        finally:
            stop_live.set()
            if live.is_alive():
                live.join(timeout=30)
            engine.close()


def test_webhook_secret_token_and_one_answer_per_update(
    settings: Settings, local_embedder: Embedder, local_llm: LLMProvider
) -> None:
    """With OBK_PUBLIC_URL, setup registers the webhook with a secret token (stored
    encrypted); a delivery without it is refused, and one delivered twice is answered once."""
    with fake_telegram() as fake:
        tuned = configured(settings, fake, public_url=PUBLIC)
        engine = Engine(tuned, embedder=local_embedder, local_llms=[local_llm])
        app = create_app(tuned, engine, worker=True)
        with serve_in_thread(app) as origin, httpx.Client(timeout=30) as http:
            iid = make_integration(engine)
            setup = engine.execute(
                "setup_telegram_integration", {"integrationId": iid}, account="alice"
            )
            url = f"{PUBLIC}/v1/integration/telegram/{iid}/webhook"
            assert setup["ready"] is True and setup["mode"] == "webhook"
            assert setup["webhookUrl"] == url and fake.webhook["url"] == url
            secret = str(fake.webhook["secret_token"])
            assert len(secret) >= 32
            fetched = engine.execute(
                "fetch_telegram_integration", {"integrationId": iid}, account="alice"
            )
            assert fetched["webhookUrl"] == url and fetched["botUsername"] == BOT_USERNAME
            with engine.store.session(write=False) as session:
                stored = str(
                    session.execute(text("SELECT settings, secrets FROM integrations")).all()
                )
            listed = str(engine.execute("list_telegram_integrations", {}, account="alice"))
            for shown in (stored, listed, str(fetched)):
                assert secret not in shown and TOKEN not in shown
            fake.push("hello over the webhook")
            update = fake.updates[-1]
            path = f"{origin}/api/v1/integration/telegram/{iid}/webhook"
            for wrong in ({}, {"X-Telegram-Bot-Api-Secret-Token": "not-the-secret"}):
                refused = http.post(path, json=update, headers=wrong)
                assert (
                    refused.status_code == 401
                    and "secret token" in refused.json()["message"].lower()
                )
            assert count(engine, Job) == 0
            good = {"X-Telegram-Bot-Api-Secret-Token": secret}
            assert http.post(path, json=update, headers=good).status_code == 200
            # Telegram redelivers when it did not see the 200 in time: acknowledged, not answered.
            assert http.post(path.replace("/api/v1", "/v1"), json=update, headers=good).is_success
            wait_until(lambda: len(fake.replies()) == 1 and jobs_done(engine))
            time.sleep(1.5)
            assert len(fake.replies()) == 1 and count(engine, Job) == 1
            # No worker polls a bot with a webhook (at most one poll was under way at setup).
            after = fake.methods()[fake.methods().index("setWebhook") :]
            assert after.count("getUpdates") <= 1
            fetched = engine.execute(
                "fetch_telegram_integration", {"integrationId": iid}, account="alice"
            )
            assert fetched.get("lastError") is None
        # Without a public address again, setup deletes the webhook (and its secret): polling.
        plain = Engine(tuned.model_copy(update={"public_url": None}), embedder=local_embedder)
        try:
            back = plain.execute(
                "setup_telegram_integration", {"integrationId": iid}, account="alice"
            )
            assert back["mode"] == "polling" and fake.webhook == {}
            assert back.get("webhookUrl") is None
            fetched = plain.execute(
                "fetch_telegram_integration", {"integrationId": iid}, account="alice"
            )
            assert fetched.get("webhookUrl") is None
        finally:
            plain.close()


def test_a_failed_send_is_retried_then_reported(served: Served) -> None:
    iid = make_integration(served.engine)
    served.fake.failures.append(500)  # Telegram fails once: retried with backoff, sent once
    served.fake.push("hello")
    wait_until(lambda: len(served.fake.replies()) == 1 and jobs_done(served.engine))
    fetched = served.run("fetch_telegram_integration", {"integrationId": iid})
    assert "500" in fetched["lastError"] and "will retry" in fetched["lastError"]
    assert count(served.engine, Message, Message.type == "bot") == 1
    # A bot blocked by the user: not retried, reported, the job failed.
    served.fake.failures.append(403)
    served.fake.push("hello again")
    wait_until(lambda: jobs_done(served.engine) and count(served.engine, Job) == 2)
    time.sleep(1.5)
    assert len(served.fake.replies()) == 1
    fetched = served.run("fetch_telegram_integration", {"integrationId": iid})
    with served.engine.store.session(write=False) as session:
        states = [(j.status, j.attempts, j.error) for j in session.scalars(select(Job)).all()]
    assert "blocked by the user" in fetched["lastError"], (states, served.fake.methods())
    with served.engine.store.session(write=False) as session:
        failed = session.scalars(select(Job).where(Job.status == "failed")).one()
    assert "403" in (failed.error or "")


def test_a_refused_token_is_reported_by_setup_and_the_poller(served: Served) -> None:
    iid = make_integration(served.engine, botToken="123:wrong")
    setup = served.run("setup_telegram_integration", {"integrationId": iid})
    assert setup["ready"] is False and "401" in setup["error"]
    wait_until(
        lambda: (
            "getMe failed"
            in str(served.run("fetch_telegram_integration", {"integrationId": iid})["lastError"])
        )
    )


def test_a_long_answer_is_split_and_a_retry_sends_only_the_rest(
    settings: Settings, local_embedder: Embedder, local_llm: LLMProvider
) -> None:
    """Sent straight through the channel's send (the test model's answers are short, and no
    worker runs here): three parts; the second fails once; the retry sends the second and the
    third, not the first again."""
    with fake_telegram() as fake:
        engine = Engine(configured(settings, fake), embedder=local_embedder, local_llms=[local_llm])
        try:
            iid = make_integration(engine)
            with engine.store.session() as session:
                row = channel_updates.integration_row(session, "telegram", iid)
                channel_updates.store(session, row, "manual:1", {"chatId": 7001, "messageId": 10})
                event_id = session.scalars(select(IntegrationEvent.id)).one()
                session.expunge(row)
            paragraph = ("word " * 700).strip()  # 3499 characters
            reply = "\n\n".join([paragraph] * 3)
            payload = {"eventId": event_id, "chatId": 7001, "messageId": 10}
            fake.fail_on[2] = 500
            with pytest.raises(wire.TelegramError, match="500"):
                service.send(engine.runtime, row, payload, reply)
            service.send(engine.runtime, row, payload, reply)
            parts = [r["text"] for r in fake.replies()]
            assert len(parts) == 3 and all(len(p) <= 4096 for p in parts)
            assert "\n\n".join(parts) == reply
            assert fake.replies()[0]["reply_to_message_id"] == 10
            assert "reply_to_message_id" not in fake.replies()[1]
            with engine.store.session(write=False) as session:
                event = session.get(IntegrationEvent, event_id)
                assert event is not None and event.sent_parts == 3
        finally:
            engine.close()


def test_split_counts_utf16_and_cuts_at_breaks() -> None:
    assert wire.split("short") == ["short"]
    emoji = "😀" * 3000  # two UTF-16 units each: 6000 units
    parts = wire.split(emoji)
    assert [len(p) for p in parts] == [2048, 952] and "".join(parts) == emoji
    lines = "\n".join(["x" * 100] * 50)
    parts = wire.split(lines, limit=1000)
    assert all(len(p) <= 1000 and not p.startswith("\n") for p in parts)
    assert "\n".join(parts) == lines
    assert wire.split("a" * 2500, limit=1000) == ["a" * 1000, "a" * 1000, "a" * 500]


def test_which_messages_are_answered() -> None:
    def update(text: str, chat_type: str = "private", **message: Any) -> dict[str, Any]:
        chat = {"id": -5 if chat_type != "private" else 7, "type": chat_type}
        sender = message.pop("sender", {"id": 7, "is_bot": False, "username": "alice"})
        body = {"message_id": 1, "from": sender, "chat": chat, "text": text, **message}
        return {"update_id": 1, "message": body}

    def asked(raw: dict[str, Any]) -> str | None:
        found = wire.message_of(raw, BOT_ID, BOT_USERNAME)
        return None if found is None else found.text

    assert asked(update("hello")) == "hello"
    start = [{"type": "bot_command", "offset": 0, "length": 6}]
    assert asked(update("/start", entities=start)) == "Hello!"
    assert asked(update("hello", "group")) is None
    command = f"/ask@{BOT_USERNAME} what time is it"
    entity = {"type": "bot_command", "offset": 0, "length": len(BOT_USERNAME) + 5}
    assert asked(update(command, "group", entities=[entity])) == "what time is it"
    other = {"type": "mention", "offset": 0, "length": 6}
    assert asked(update("@other hello", "group", entities=[other])) is None
    named = {"type": "text_mention", "offset": 3, "length": 3, "user": {"id": BOT_ID}}
    assert asked(update("hi Obk, hello", "group", entities=[named])) == "hi , hello"
    # Offsets count UTF-16 units: an emoji before the mention shifts it by two.
    text = f"😀 @{BOT_USERNAME} hi"
    mention = {"type": "mention", "offset": 3, "length": len(BOT_USERNAME) + 1}
    assert asked(update(text, "supergroup", entities=[mention])) == "😀 hi"
    assert asked(update("hi", sender={"id": 8, "is_bot": True})) is None
    assert asked({"update_id": 2, "edited_message": {"text": "x"}}) is None


def test_the_token_never_reaches_a_log_or_an_error(caplog: pytest.LogCaptureFixture) -> None:
    """The token is part of every Bot API URL: httpx's request log masks it, and a failed
    call's error names the method, not the URL."""
    with fake_telegram() as fake, caplog.at_level("INFO", logger="httpx"):
        wire.Bot(fake.url, TOKEN).get_me()
        with pytest.raises(wire.TelegramError) as refused:
            wire.Bot(fake.url, TOKEN + "x").get_me()
        with pytest.raises(wire.TelegramError) as unreachable:
            wire.Bot("http://127.0.0.1:9", TOKEN).get_me()
    logged = caplog.text
    assert "getMe" in logged and "/bot<token>/" in logged
    for shown in (logged, str(refused.value), str(unreachable.value)):
        assert TOKEN not in shown
    assert refused.value.permanent and refused.value.code == 401
    assert not unreachable.value.permanent

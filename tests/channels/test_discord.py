"""Discord end to end, offline: a fake Discord REST API on loopback, interactions signed here
with an Ed25519 key made for the test, the real server with its worker and a small model.

Attacks: forged, tampered and stale signatures, the same interaction delivered twice, users
outside allowFrom, another command, a follow-up that fails (retried, then reported), a worker
that dies mid-answer, and the interaction token kept readable in the queue.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from nacl.encoding import HexEncoder
from nacl.signing import SigningKey
from sqlalchemy import func, select

from openbotkit.engine import Engine
from openbotkit.errors import InvalidInput
from openbotkit.ids import now_ms
from openbotkit.ingestion import jobs
from openbotkit.models.providers import LLMProvider
from openbotkit.retrieval.embedders import Embedder
from openbotkit.server.app import create_app
from openbotkit.services import channel_events
from openbotkit.services.worker import Worker
from openbotkit.settings import Settings
from openbotkit.store.tables import Job, Message
from tests.channels.fake_discord import APP_ID, BOT_TOKEN, BOT_USER_ID, FakeDiscord, fake_discord
from tests.channels.test_slack import FAST_BOT, PUBLIC, jobs_done, wait_until
from tests.reliability.serving import obk_serve
from tests.server.serving import serve_in_thread

KEY = SigningKey.generate()
PUBLIC_KEY = KEY.verify_key.encode(HexEncoder).decode()
GUILD = "1000000000000000001"
CHANNEL = "2000000000000000002"
ALICE = "1000000000000000010"


def signed(body: bytes, *, key: SigningKey = KEY, at: float | None = None) -> dict[str, str]:
    """Discord's headers: the key's signature of timestamp + body."""
    stamp = str(int(at if at is not None else time.time()))
    signature = key.sign(stamp.encode() + body).signature.hex()
    return {"X-Signature-Ed25519": signature, "X-Signature-Timestamp": stamp}


@dataclass
class Served:
    engine: Engine
    origin: str
    discord: FakeDiscord
    http: httpx.Client

    def run(self, name: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.engine.execute(name, data, account="alice")

    def url(self, integration_id: str, prefix: str = "/v1") -> str:
        return f"{self.origin}{prefix}/integration/discord/{integration_id}/interaction"

    def deliver(
        self,
        integration_id: str,
        interaction: dict[str, Any],
        *,
        key: SigningKey = KEY,
        at: float | None = None,
        prefix: str = "/v1",
    ) -> httpx.Response:
        body = json.dumps(interaction).encode()
        headers = {**signed(body, key=key, at=at), "Content-Type": "application/json"}
        return self.http.post(self.url(integration_id, prefix), content=body, headers=headers)


@pytest.fixture
def served(
    settings: Settings, local_embedder: Embedder, local_llm: LLMProvider
) -> Iterator[Served]:
    with fake_discord() as discord:
        configured = settings.model_copy(
            update={"discord_api_url": discord.url, "public_url": PUBLIC}
        )
        engine = Engine(configured, embedder=local_embedder, local_llms=[local_llm])
        app = create_app(configured, engine, worker=True)
        with serve_in_thread(app) as origin, httpx.Client(timeout=30) as http:
            yield Served(engine, origin, discord, http)


def command(
    interaction_id: str,
    question: str,
    *,
    name: str = "ask",
    user: str = ALICE,
    guild: str | None = GUILD,
    channel: str = CHANNEL,
) -> dict[str, Any]:
    """An APPLICATION_COMMAND interaction as Discord posts it (in a server, or a DM)."""
    who = {"id": user, "username": "alice", "global_name": "Alice"}
    interaction: dict[str, Any] = {
        "id": interaction_id,
        "application_id": APP_ID,
        "type": 2,
        "token": f"aW50ZXJhY3Rpb24-{interaction_id}",
        "version": 1,
        "channel_id": channel,
        "data": {
            "id": "1300",
            "name": name,
            "type": 1,
            "options": [{"name": "question", "type": 3, "value": question}],
        },
    }
    if guild:
        interaction.update(guild_id=guild, member={"user": who, "roles": []})
    else:
        interaction["user"] = who
    return interaction


def integration(served: Served, **fields: Any) -> str:
    bot = served.run("create_bot", FAST_BOT)["id"]
    data = {
        "botId": bot,
        "appId": APP_ID,
        "publicKey": PUBLIC_KEY,
        "botToken": BOT_TOKEN,
        **fields,
    }
    return str(served.run("create_discord_integration", data)["id"])


def queued(engine: Engine) -> int:
    with engine.store.session(write=False) as session:
        return int(session.scalar(select(func.count()).select_from(Job)) or 0)


def test_ping_and_refused_signatures(served: Served) -> None:
    iid = integration(served)
    ping = {"id": "1", "application_id": APP_ID, "type": 1, "version": 1}
    ok = served.deliver(iid, ping)
    assert ok.status_code == 200 and ok.json() == {"type": 1}
    assert served.deliver(iid, ping, prefix="/api/v1").json() == {"type": 1}
    # Signed by another key (Discord's endpoint check sends exactly this), stale, or unsigned.
    forged = served.deliver(iid, ping, key=SigningKey.generate())
    assert forged.status_code == 401 and "signature" in forged.json()["message"]
    stale = served.deliver(iid, ping, at=time.time() - 6 * 60)
    assert stale.status_code == 401 and "five minutes" in stale.json()["message"]
    assert served.http.post(served.url(iid), json=ping).status_code == 401
    # A signature replayed on another body: the body is what is signed.
    body = json.dumps(command("2001", "hello")).encode()
    headers = signed(body)
    tampered = body.replace(b"hello", b"jello")
    assert served.http.post(served.url(iid), content=tampered, headers=headers).status_code == 401
    assert queued(served.engine) == 0
    assert served.deliver("nope", ping).status_code == 404


def test_setup_registers_the_command_and_checks_the_token(served: Served) -> None:
    iid = integration(served, handle="/Helpdesk")
    setup = served.run("setup_discord_integration", {"integrationId": iid})
    assert setup["ready"] is True and setup["runtime"] is True and setup["missing"] == []
    assert setup["eventsUrl"] == f"{PUBLIC}/v1/integration/discord/{iid}/interaction"
    assert setup["botUserId"] == BOT_USER_ID and setup["commandId"] == "1300"
    registered = [b for m, p, b in served.discord.calls if p.endswith("/commands")]
    assert registered[0]["name"] == "helpdesk" and registered[0]["options"][0]["required"]
    # Secrets never show; the token is checked again once changed.
    shown = json.dumps(served.run("fetch_discord_integration", {"integrationId": iid}))
    assert BOT_TOKEN not in shown and "botToken" not in shown
    served.run("update_discord_integration", {"integrationId": iid, "botToken": "wrong"})
    refused = served.run("setup_discord_integration", {"integrationId": iid})
    assert refused["ready"] is False and "HTTP 401" in refused["error"]
    fetched = served.run("fetch_discord_integration", {"integrationId": iid})
    assert "HTTP 401" in fetched["lastError"]
    # What Discord would refuse is refused when it is given, naming the field.
    for field, value in (("handle", "ask me"), ("publicKey", "not-hex")):
        with pytest.raises(InvalidInput, match=field):
            served.run("update_discord_integration", {"integrationId": iid, field: value})


def test_a_command_is_deferred_then_answered_once(served: Served) -> None:
    iid = integration(served)
    interaction = command("2002", "What is the capital of France?")
    first = served.deliver(iid, interaction)
    assert first.status_code == 200 and first.json() == {"type": 5}
    # The same interaction again (a retry, a replay within the window): not answered twice.
    assert served.deliver(iid, interaction).json() == {"type": 5}
    wait_until(lambda: len(served.discord.edits()) >= 1 and jobs_done(served.engine))
    time.sleep(1.5)  # a second answer would have been sent by now
    edits = served.discord.edits()
    assert len(edits) == 1
    token, body = edits[0]
    assert token == interaction["token"] and body["allowed_mentions"] == {"parse": []}
    contacts = served.run("list_contacts", {})["items"]
    assert [c["fingerprint"] for c in contacts] == [f"discord:{APP_ID}:{ALICE}"]
    conversation = served.run("list_conversations", {})["items"][0]
    assert conversation["meta"] == {"integrationId": iid, "channel": "discord"}
    messages = served.run("list_conversation_messages", {"conversationId": conversation["id"]})
    texts = [(m["type"], m["text"]) for m in messages["items"]]
    assert texts == [("user", "What is the capital of France?"), ("bot", body["content"])]
    # A direct message (no guild) continues the same person's conversation.
    served.deliver(iid, command("2003", "And of Italy?", guild=None, channel="1000000000000000099"))
    wait_until(lambda: len(served.discord.edits()) >= 2 and jobs_done(served.engine))
    assert len(served.run("list_conversations", {})["items"]) == 1
    # Another command is told what this bot answers, and nothing is queued for it.
    before = queued(served.engine)
    other = served.deliver(iid, command("2004", "hi", name="roll"))
    assert other.json()["type"] == 4 and "/ask" in other.json()["data"]["content"]
    assert other.json()["data"]["flags"] == 64
    assert queued(served.engine) == before
    # The interaction token is sealed in the queue like a secret.
    with served.engine.store.session(write=False) as session:
        payloads = session.execute(sa.text("SELECT payload FROM jobs")).scalars().all()
    assert payloads and all(interaction["token"] not in str(p) for p in payloads)


def test_users_outside_allow_from_are_refused(served: Served) -> None:
    iid = integration(served, allowFrom=f"{ALICE}\n{GUILD[:-1]}?")
    mallory = "1000000000000000066"
    refused = served.deliver(iid, command("2005", "hi", user=mallory, guild=None))
    assert refused.json()["type"] == 4 and "not allowed" in refused.json()["data"]["content"]
    assert queued(served.engine) == 0
    # In the allowed server anyone may ask; Alice may ask anywhere.
    assert served.deliver(iid, command("2006", "hi", user=mallory)).json() == {"type": 5}
    served.deliver(iid, command("2007", "hi", guild=None))
    wait_until(lambda: len(served.discord.edits()) == 2 and jobs_done(served.engine))
    fingerprints = {c["fingerprint"] for c in served.run("list_contacts", {})["items"]}
    assert fingerprints == {f"discord:{APP_ID}:{mallory}", f"discord:{APP_ID}:{ALICE}"}


def test_a_failed_follow_up_is_retried_then_reported(served: Served) -> None:
    iid = integration(served)
    served.discord.failures.append(503)  # Discord is down once: retried with backoff
    served.deliver(iid, command("2008", "hello"))
    wait_until(lambda: len(served.discord.edits()) == 2 and jobs_done(served.engine))
    fetched = served.run("fetch_discord_integration", {"integrationId": iid})
    assert "HTTP 503" in fetched["lastError"] and "will retry" in fetched["lastError"]
    with served.engine.store.session(write=False) as session:
        answers = session.scalar(
            select(func.count()).select_from(Message).where(Message.type == "bot")
        )
    assert answers == 1  # the retry sent the stored answer, it did not generate another
    # An expired interaction token (404 Unknown Webhook) cannot be fixed by retrying.
    served.discord.failures.append(404)
    served.deliver(iid, command("2009", "hello again"))
    wait_until(lambda: jobs_done(served.engine) and len(served.discord.edits()) == 3)
    time.sleep(1.5)
    assert len(served.discord.edits()) == 3
    fetched = served.run("fetch_discord_integration", {"integrationId": iid})
    assert "HTTP 404" in fetched["lastError"] and "will retry" not in fetched["lastError"]
    assert "aW50ZXJhY3Rpb24" not in fetched["lastError"]  # no interaction token in the report
    with served.engine.store.session(write=False) as session:
        failed = session.scalars(select(Job).where(Job.status == "failed")).all()
    assert len(failed) == 1 and "HTTP 404" in (failed[0].error or "")


def test_a_worker_that_dies_mid_answer_loses_nothing(
    settings: Settings, local_embedder: Embedder, local_llm: LLMProvider
) -> None:
    with fake_discord() as discord:
        configured = settings.model_copy(update={"discord_api_url": discord.url})
        engine = Engine(configured, embedder=local_embedder, local_llms=[local_llm])
        try:
            bot = engine.execute("create_bot", FAST_BOT, account="alice")["id"]
            fields = {"botId": bot, "appId": APP_ID, "publicKey": PUBLIC_KEY, "botToken": BOT_TOKEN}
            iid = engine.execute("create_discord_integration", fields, account="alice")["id"]
            body = json.dumps(command("2010", "hello")).encode()
            headers = {k.lower(): v for k, v in signed(body).items()}
            ack = channel_events.receive_discord(engine.runtime, iid, headers, body)
            assert ack.body == {"type": 5}
            with engine.store.session() as session:
                dead = jobs.claim_next_job(session, "dead-worker", now_ms(), lease_ms=1)
                assert dead is not None and dead.kind == jobs.CHANNEL_ANSWER
            time.sleep(0.01)
            done = Worker(engine.runtime, "live-worker").run_once()
            assert done is not None and done.status == "succeeded" and done.attempts == 2
            assert Worker(engine.runtime, "live-worker").run_once() is None
            assert len(discord.edits()) == 1
        finally:
            engine.close()


def test_obk_serve_answers_an_interaction(tmp_path: Path, cache_dir: Path) -> None:
    """The real `obk serve` (its own process and worker): set up over the REST API, then a
    signed slash command is deferred and answered through the fake Discord."""
    with (
        fake_discord() as discord,
        obk_serve(
            tmp_path / "home",
            OBK_DISCORD_API_URL=discord.url,
            OBK_PUBLIC_URL=PUBLIC,
            OBK_CACHE_DIR=str(cache_dir),
        ) as served,
        httpx.Client(headers=served.headers("a"), timeout=30) as http,
    ):
        bot = http.post(served.base + "/bot/create", json=FAST_BOT).json()["id"]
        fields = {"botId": bot, "appId": APP_ID, "publicKey": PUBLIC_KEY, "botToken": BOT_TOKEN}
        made = http.post(served.base + "/integration/discord/create", json=fields)
        iid = made.json()["id"]
        setup = http.post(served.base + f"/integration/discord/{iid}/setup", json={}).json()
        assert setup["ready"] is True and setup["commandId"] == "1300"
        body = json.dumps(command("2100", "Say hello")).encode()
        url = f"{served.origin}/v1/integration/discord/{iid}/interaction"
        with httpx.Client(timeout=30) as channel:  # Discord sends no API key
            deferred = channel.post(url, content=body, headers=signed(body))
            assert deferred.status_code == 200 and deferred.json() == {"type": 5}
            again = channel.post(url, content=body, headers=signed(body))
            assert again.json() == {"type": 5}
        wait_until(lambda: len(discord.edits()) >= 1)
        conversations = http.get(served.base + "/conversation/list").json()["items"]
        assert len(conversations) == 1
        time.sleep(1.5)
        assert len(discord.edits()) == 1


def test_a_bot_that_cannot_answer_replaces_thinking_with_a_notice(served: Served) -> None:
    iid = integration(served)
    bot = served.run("fetch_discord_integration", {"integrationId": iid})["botId"]
    served.run("delete_bot", {"botId": bot})
    assert served.deliver(iid, command("2011", "hello")).json() == {"type": 5}
    wait_until(lambda: len(served.discord.edits()) == 1 and jobs_done(served.engine))
    # Discord shows "thinking…" until the deferred reply is edited: the person is told.
    assert served.discord.edits()[0][1]["content"] == channel_events.FAILURE_NOTICE
    fetched = served.run("fetch_discord_integration", {"integrationId": iid})
    assert "has no bot" in fetched["lastError"]
    with served.engine.store.session(write=False) as session:
        failed = session.scalars(select(Job).where(Job.status == "failed")).all()
    assert len(failed) == 1

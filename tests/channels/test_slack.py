"""Slack end to end, offline: a fake Slack Web API on loopback, events signed here with the
integration's signing secret, the real server with its worker and the bundled model.

Attacks: forged and stale signatures, redelivered events (also with X-Slack-Retry-Num), senders
outside allowFrom, a send that fails, a worker that dies mid-answer, and secrets leaking into
any output.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from openbotkit.channels.slack import signature
from openbotkit.engine import Engine
from openbotkit.errors import NotFound
from openbotkit.ids import now_ms
from openbotkit.ingestion import jobs
from openbotkit.models.providers import LLMProvider
from openbotkit.retrieval.embedders import Embedder
from openbotkit.server.app import create_app
from openbotkit.services import channel_events
from openbotkit.services.secrets import create_secret
from openbotkit.services.worker import Worker
from openbotkit.settings import Settings
from openbotkit.store.tables import Conversation, Job, Message
from tests.channels.fake_slack import TOKEN, FakeSlack, fake_slack
from tests.server.serving import serve_in_thread

SIGNING = "8f742231b10e8888abcd99yyyzzz85a5"
FAST_BOT = {"model": "smollm2/maxTokens=12/temperature=0", "backstory": "Answer briefly."}
PUBLIC = "https://bots.example.org"


@dataclass
class Served:
    engine: Engine
    origin: str
    slack: FakeSlack
    http: httpx.Client

    def run(self, name: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.engine.execute(name, data, account="alice")

    def event_url(self, integration_id: str, prefix: str = "/v1") -> str:
        return f"{self.origin}{prefix}/integration/slack/{integration_id}/event"

    def deliver(
        self,
        integration_id: str,
        envelope: dict[str, Any],
        *,
        secret: str = SIGNING,
        at: float | None = None,
        headers: dict[str, str] | None = None,
        prefix: str = "/v1",
    ) -> httpx.Response:
        """POST an event the way Slack does: the raw body signed at `at` (default now)."""
        body = json.dumps(envelope).encode()
        stamp = str(int(at if at is not None else time.time()))
        signed = {
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signature(secret, stamp, body),
            "Content-Type": "application/json",
            **(headers or {}),
        }
        return self.http.post(self.event_url(integration_id, prefix), content=body, headers=signed)


@pytest.fixture
def served(
    settings: Settings, local_embedder: Embedder, local_llm: LLMProvider
) -> Iterator[Served]:
    with fake_slack() as slack:
        configured = settings.model_copy(update={"slack_api_url": slack.url, "public_url": PUBLIC})
        engine = Engine(configured, embedder=local_embedder, local_llms=[local_llm])
        app = create_app(configured, engine, worker=True)
        with serve_in_thread(app) as origin, httpx.Client(timeout=30) as http:
            yield Served(engine, origin, slack, http)


def mention(
    event_id: str,
    text: str,
    *,
    user: str = "U0ALICE",
    channel: str = "C0GENERAL",
    ts: str = "1700000001.000100",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "type": "event_callback",
        "team_id": "T0TEAM",
        "event_id": event_id,
        "event": {
            "type": "app_mention",
            "user": user,
            "channel": channel,
            "text": f"<@U0BOT> {text}",
            "ts": ts,
            **extra,
        },
    }


def integration(served: Served, **fields: Any) -> str:
    bot = served.run("create_bot", FAST_BOT)["id"]
    data = {"botId": bot, "botToken": TOKEN, "signingSecret": SIGNING, **fields}
    return str(served.run("create_slack_integration", data)["id"])


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


def test_secrets_are_write_only(served: Served) -> None:
    iid = integration(served, name="Helpdesk", allowFrom="U0ALICE")
    fetched = served.run("fetch_slack_integration", {"integrationId": iid})
    listed = served.run("list_slack_integrations", {})
    over_http = served.http.get(
        f"{served.origin}/api/v1/integration/slack/{iid}/fetch",
        headers={"Authorization": "Bearer " + create_secret(served.engine.runtime, "alice")[1]},
    )
    assert over_http.status_code == 200
    for shown in (json.dumps(fetched), json.dumps(listed), over_http.text):
        assert TOKEN not in shown and SIGNING not in shown
        assert "botToken" not in shown and "signingSecret" not in shown
    assert fetched["name"] == "Helpdesk" and fetched["allowFrom"] == "U0ALICE"
    # At rest they are encrypted: the row holds neither value.
    with served.engine.runtime.store.session(write=False) as session:
        raw = session.execute(sa.text("SELECT secrets FROM integrations")).scalar_one()
    assert TOKEN not in str(raw) and SIGNING not in str(raw)
    # Another kind's list does not show it; its fetch does not find it.
    assert served.run("list_telegram_integrations", {})["items"] == []
    with pytest.raises(NotFound, match="not found"):
        served.run("fetch_telegram_integration", {"integrationId": iid})
    # setup checks the token with auth.test and gives the Events URL.
    setup = served.run("setup_slack_integration", {"integrationId": iid})
    assert setup["ready"] is True and setup["missing"] == []
    assert setup["eventsUrl"] == f"{PUBLIC}/v1/integration/slack/{iid}/event"
    assert setup["teamId"] == "T0TEAM" and setup["botUserId"] == "U0BOT"
    assert ("auth.test", {}) in served.slack.calls
    # A token removed (null) is reported missing.
    served.run("update_slack_integration", {"integrationId": iid, "botToken": None})
    setup = served.run("setup_slack_integration", {"integrationId": iid})
    assert setup["ready"] is False and setup["missing"] == ["botToken"]


def test_forged_stale_and_challenge(served: Served) -> None:
    iid = integration(served)
    challenge = {
        "type": "url_verification",
        "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
        "token": "x",
    }
    ok = served.deliver(iid, challenge, prefix="/api/v1")
    assert ok.status_code == 200 and ok.json() == {"challenge": challenge["challenge"]}
    forged = served.deliver(iid, challenge, secret="not-the-signing-secret")
    assert forged.status_code == 401 and "signature" in forged.json()["message"]
    stale = served.deliver(iid, challenge, at=time.time() - 6 * 60)
    assert stale.status_code == 401 and "five minutes" in stale.json()["message"]
    unsigned = served.http.post(served.event_url(iid), json=challenge)
    assert unsigned.status_code == 401
    # A forged mention is not answered either: nothing is queued.
    assert served.deliver(iid, mention("Ev0FORGED", "hello"), secret="wrong").status_code == 401
    with served.engine.store.session(write=False) as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 0
    unknown = served.deliver("nope", challenge)
    assert unknown.status_code == 404


def test_a_mention_is_answered_once_in_its_thread(served: Served) -> None:
    iid = integration(served, sessionDuration=3_600_000)
    event = mention("Ev0FIRST", "What is the capital of France?")
    first = served.deliver(iid, event)
    assert first.status_code == 200
    # Slack's retries and a plain duplicate: acknowledged, not answered again.
    assert (
        served.deliver(
            iid, event, headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
        ).status_code
        == 200
    )
    assert served.deliver(iid, event).status_code == 200
    wait_until(lambda: len(served.slack.posted()) >= 1 and jobs_done(served.engine))
    posted = served.slack.posted()
    assert len(posted) == 1
    assert posted[0]["channel"] == "C0GENERAL" and posted[0]["thread_ts"] == "1700000001.000100"
    # The answer is the bot's message stored in a conversation with the contact.
    contacts = served.run("list_contacts", {})["items"]
    assert [c["fingerprint"] for c in contacts] == ["slack:T0TEAM:U0ALICE"]
    conversations = served.run("list_conversations", {})["items"]
    assert len(conversations) == 1
    conversation = conversations[0]
    assert conversation["contactId"] == contacts[0]["id"]
    assert conversation["meta"] == {"integrationId": iid, "channel": "slack"}
    messages = served.run("list_conversation_messages", {"conversationId": conversation["id"]})
    texts = [(m["type"], m["text"]) for m in messages["items"]]
    assert texts[0] == ("user", "What is the capital of France?")
    assert texts[1] == ("bot", posted[0]["text"])
    # A second message within sessionDuration continues that conversation.
    served.deliver(iid, mention("Ev0SECOND", "And of Italy?", ts="1700000002.000200"))
    # A direct message counts too; a bot's own message and an edit are not answered.
    dm = {
        "type": "event_callback",
        "team_id": "T0TEAM",
        "event_id": "Ev0DM",
        "event": {
            "type": "message",
            "channel_type": "im",
            "channel": "D0DM",
            "user": "U0ALICE",
            "text": "thanks",
            "ts": "1700000003.000300",
        },
    }
    served.deliver(iid, dm)
    own = json.loads(json.dumps(dm))
    own["event_id"], own["event"]["bot_id"] = "Ev0OWN", "B0BOT"
    served.deliver(iid, own)
    edit = json.loads(json.dumps(dm))
    edit["event_id"], edit["event"]["subtype"] = "Ev0EDIT", "message_changed"
    served.deliver(iid, edit)
    wait_until(lambda: len(served.slack.posted()) >= 3 and jobs_done(served.engine))
    time.sleep(1.5)  # a wrongly queued answer would have been sent by now
    posted = served.slack.posted()
    assert len(posted) == 3
    assert posted[1]["thread_ts"] == "1700000002.000200"
    assert posted[2]["channel"] == "D0DM" and "thread_ts" not in posted[2]
    assert len(served.run("list_conversations", {})["items"]) == 1
    with served.engine.store.session(write=False) as session:
        count = session.scalar(select(func.count()).select_from(Message))
    assert count == 6  # three questions, three answers, in the one conversation


def test_after_session_duration_a_new_conversation_starts(served: Served) -> None:
    iid = integration(served, sessionDuration=0)
    served.deliver(iid, mention("Ev1", "hello"))
    wait_until(lambda: len(served.slack.posted()) == 1 and jobs_done(served.engine))
    time.sleep(0.01)
    served.deliver(iid, mention("Ev2", "hello again"))
    wait_until(lambda: len(served.slack.posted()) == 2 and jobs_done(served.engine))
    with served.engine.store.session(write=False) as session:
        assert session.scalar(select(func.count()).select_from(Conversation)) == 2


def test_senders_outside_allow_from_are_ignored(served: Served) -> None:
    iid = integration(served, allowFrom="U0ALICE\nC0TEAM*")
    assert served.deliver(iid, mention("Ev0MALLORY", "hi", user="U0MALLORY")).status_code == 200
    served.deliver(iid, mention("Ev0TEAMCHAN", "hi", user="U0MALLORY", channel="C0TEAMROOM"))
    wait_until(lambda: len(served.slack.posted()) == 1 and jobs_done(served.engine))
    time.sleep(1.5)
    assert [p["channel"] for p in served.slack.posted()] == ["C0TEAMROOM"]
    assert [c["fingerprint"] for c in served.run("list_contacts", {})["items"]] == [
        "slack:T0TEAM:U0MALLORY"
    ]


def test_a_failed_send_is_retried_then_reported(served: Served) -> None:
    iid = integration(served)
    served.slack.failures.append(503)  # Slack is down once: retried with backoff, sent once
    served.deliver(iid, mention("Ev0RETRY", "hello"))
    wait_until(lambda: len(served.slack.posted()) == 2 and jobs_done(served.engine))
    fetched = served.run("fetch_slack_integration", {"integrationId": iid})
    assert "HTTP 503" in fetched["lastError"] and fetched["lastErrorAt"] > 0
    with served.engine.store.session(write=False) as session:
        answers = session.scalar(
            select(func.count()).select_from(Message).where(Message.type == "bot")
        )
    assert answers == 1  # the retry sent the stored answer, it did not generate another
    # A refused token is not retried: reported on the integration, the job failed.
    served.slack.failures.append("invalid_auth")
    served.deliver(iid, mention("Ev0REFUSED", "hello", ts="1700000009.000900"))
    wait_until(lambda: jobs_done(served.engine) and len(served.slack.posted()) == 3)
    time.sleep(1.5)
    assert len(served.slack.posted()) == 3
    fetched = served.run("fetch_slack_integration", {"integrationId": iid})
    assert "invalid_auth" in fetched["lastError"]
    with served.engine.store.session(write=False) as session:
        failed = session.scalars(select(Job).where(Job.status == "failed")).all()
    assert len(failed) == 1 and "invalid_auth" in (failed[0].error or "")


def test_a_worker_that_dies_mid_answer_loses_nothing(
    settings: Settings, local_embedder: Embedder, local_llm: LLMProvider
) -> None:
    """A worker claims the answer's job and dies (its lease runs out): the next worker takes
    the job over and the event is answered, once."""
    with fake_slack() as slack:
        configured = settings.model_copy(update={"slack_api_url": slack.url})
        engine = Engine(configured, embedder=local_embedder, local_llms=[local_llm])
        try:
            bot = engine.execute("create_bot", FAST_BOT, account="alice")["id"]
            iid = engine.execute(
                "create_slack_integration",
                {"botId": bot, "botToken": TOKEN, "signingSecret": SIGNING},
                account="alice",
            )["id"]
            body = json.dumps(mention("Ev0CRASH", "hello")).encode()
            stamp = str(int(time.time()))
            headers = {
                "x-slack-request-timestamp": stamp,
                "x-slack-signature": signature(SIGNING, stamp, body),
            }
            channel_events.receive_slack(engine.runtime, iid, headers, body)
            with engine.store.session() as session:
                dead = jobs.claim_next_job(session, "dead-worker", now_ms(), lease_ms=1)
                assert dead is not None and dead.kind == jobs.CHANNEL_ANSWER
            time.sleep(0.01)
            done = Worker(engine.runtime, "live-worker").run_once()
            assert done is not None and done.status == "succeeded" and done.attempts == 2
            assert Worker(engine.runtime, "live-worker").run_once() is None
            assert len(slack.posted()) == 1
        finally:
            engine.close()


def test_keys_limited_to_a_bot_do_not_manage_integrations_or_contacts(served: Served) -> None:
    """Integrations and contacts belong to the account: a key limited to a bot (even with the
    destructive scope) can neither create, read nor re-point them."""
    iid = integration(served)
    bot = served.run("fetch_slack_integration", {"integrationId": iid})["botId"]
    _, token = create_secret(served.engine.runtime, "alice", bots=[bot])
    auth = {"Authorization": f"Bearer {token}"}
    base = f"{served.origin}/api/v1"
    calls = [
        ("POST", "/integration/slack/create", {"botId": bot, "botToken": "x"}),
        ("GET", f"/integration/slack/{iid}/fetch", None),
        ("POST", f"/integration/slack/{iid}/update", {"botId": bot}),
        ("GET", "/integration/slack/list", None),
        ("POST", "/contact/ensure", {"fingerprint": "x"}),
        ("GET", "/contact/list", None),
    ]
    for method, path, body in calls:
        answer = served.http.request(method, base + path, json=body, headers=auth)
        assert answer.status_code == 403, (path, answer.text)

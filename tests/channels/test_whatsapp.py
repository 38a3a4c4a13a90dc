"""WhatsApp Cloud API end to end, offline: a fake Graph API on loopback, webhook deliveries
signed here with the app secret (HMAC-SHA256), the real server with its worker and a small
model.

Attacks: a wrong verify token in the handshake, forged, tampered and unsigned deliveries, the
same message delivered again, statuses and non-text messages, another number's messages,
senders outside allowFrom, a send that fails (retried, then reported).
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
from sqlalchemy import func, select

from openbotkit.channels.whatsapp import signature
from openbotkit.engine import Engine
from openbotkit.models.providers import LLMProvider
from openbotkit.retrieval.embedders import Embedder
from openbotkit.server.app import create_app
from openbotkit.settings import Settings
from openbotkit.store.tables import Job, Message
from tests.channels.fake_graph import (
    ACCESS_TOKEN,
    DISPLAY_NUMBER,
    PHONE_NUMBER_ID,
    FakeGraph,
    fake_graph,
)
from tests.channels.test_slack import FAST_BOT, PUBLIC, jobs_done, wait_until
from tests.reliability.serving import obk_serve
from tests.server.serving import serve_in_thread

APP_SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
ALICE = "15550001111"


@dataclass
class Served:
    engine: Engine
    origin: str
    graph: FakeGraph
    http: httpx.Client

    def run(self, name: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.engine.execute(name, data, account="alice")

    def url(self, integration_id: str, prefix: str = "/v1") -> str:
        return f"{self.origin}{prefix}/integration/whatsapp/{integration_id}/webhook"

    def deliver(
        self,
        integration_id: str,
        change_set: dict[str, Any],
        *,
        secret: str = APP_SECRET,
        prefix: str = "/v1",
    ) -> httpx.Response:
        """POST a webhook delivery the way Meta does: the raw body, signed with the app
        secret."""
        body = json.dumps(change_set).encode()
        headers = {
            "X-Hub-Signature-256": signature(secret, body),
            "Content-Type": "application/json",
        }
        return self.http.post(self.url(integration_id, prefix), content=body, headers=headers)


@pytest.fixture
def served(
    settings: Settings, local_embedder: Embedder, local_llm: LLMProvider
) -> Iterator[Served]:
    with fake_graph() as graph:
        configured = settings.model_copy(
            update={"whatsapp_api_url": graph.url, "public_url": PUBLIC}
        )
        engine = Engine(configured, embedder=local_embedder, local_llms=[local_llm])
        app = create_app(configured, engine, worker=True)
        with serve_in_thread(app) as origin, httpx.Client(timeout=30) as http:
            yield Served(engine, origin, graph, http)


def delivery(
    *messages: dict[str, Any],
    statuses: list[dict[str, Any]] | None = None,
    number: str = PHONE_NUMBER_ID,
) -> dict[str, Any]:
    """A webhook delivery as Meta posts it: one change with these messages (or statuses)."""
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550100100", "phone_number_id": number},
    }
    if messages:
        value["contacts"] = [{"profile": {"name": "Alice"}, "wa_id": m["from"]} for m in messages]
        value["messages"] = list(messages)
    if statuses:
        value["statuses"] = statuses
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}],
    }


def text(message_id: str, body: str, sender: str = ALICE) -> dict[str, Any]:
    return {
        "from": sender,
        "id": message_id,
        "timestamp": str(int(time.time())),
        "type": "text",
        "text": {"body": body},
    }


def integration(served: Served, **fields: Any) -> str:
    bot = served.run("create_bot", FAST_BOT)["id"]
    data = {
        "botId": bot,
        "phoneNumberId": PHONE_NUMBER_ID,
        "accessToken": ACCESS_TOKEN,
        "appSecret": APP_SECRET,
        **fields,
    }
    return str(served.run("create_whatsapp_integration", data)["id"])


def queued(engine: Engine) -> int:
    with engine.store.session(write=False) as session:
        return int(session.scalar(select(func.count()).select_from(Job)) or 0)


def test_handshake_setup_and_refused_signatures(served: Served) -> None:
    iid = integration(served)
    verify = served.run("fetch_whatsapp_integration", {"integrationId": iid})["verifyToken"]
    params = {"hub.mode": "subscribe", "hub.verify_token": verify, "hub.challenge": "1158201444"}
    for prefix in ("/v1", "/api/v1"):
        ok = served.http.get(served.url(iid, prefix), params=params)
        assert ok.status_code == 200 and ok.text == "1158201444"
    wrong = served.http.get(served.url(iid), params={**params, "hub.verify_token": "guess"})
    assert wrong.status_code == 401 and "verifyToken" in wrong.json()["message"]
    assert served.http.get(served.url(iid), params={**params, "hub.mode": "x"}).status_code == 401
    # setup checks the access token against the number and gives the Callback URL.
    setup = served.run("setup_whatsapp_integration", {"integrationId": iid})
    assert setup["ready"] is True and setup["runtime"] is True and setup["missing"] == []
    assert setup["eventsUrl"] == f"{PUBLIC}/v1/integration/whatsapp/{iid}/webhook"
    assert setup["displayPhoneNumber"] == DISPLAY_NUMBER and verify in setup["message"]
    shown = json.dumps(served.run("fetch_whatsapp_integration", {"integrationId": iid}))
    assert ACCESS_TOKEN not in shown and APP_SECRET not in shown
    served.run("update_whatsapp_integration", {"integrationId": iid, "accessToken": "expired"})
    refused = served.run("setup_whatsapp_integration", {"integrationId": iid})
    assert refused["ready"] is False and "code 190" in refused["error"]
    assert (
        "code 190" in served.run("fetch_whatsapp_integration", {"integrationId": iid})["lastError"]
    )
    # Forged, tampered and unsigned deliveries are refused, and nothing is queued.
    change = delivery(text("wamid.FORGED", "hello"))
    forged = served.deliver(iid, change, secret="not-the-app-secret")
    assert forged.status_code == 401 and "signature" in forged.json()["message"]
    body = json.dumps(change).encode()
    tampered = body.replace(b"hello", b"jello")
    headers = {"X-Hub-Signature-256": signature(APP_SECRET, body)}
    assert served.http.post(served.url(iid), content=tampered, headers=headers).status_code == 401
    assert served.http.post(served.url(iid), content=body).status_code == 401
    assert queued(served.engine) == 0
    assert served.deliver("nope", change).status_code == 404


def test_a_message_is_answered_once(served: Served) -> None:
    iid = integration(served)
    change = delivery(text("wamid.FIRST", "What is the capital of France?"))
    assert served.deliver(iid, change).status_code == 200
    # Meta redelivers until it gets a 200: the same message id is not answered again.
    assert served.deliver(iid, change, prefix="/api/v1").status_code == 200
    # Statuses, a picture, and a message to another number of the same app: not answered.
    status = {"id": "wamid.OUT1", "status": "delivered", "recipient_id": ALICE}
    served.deliver(iid, delivery(statuses=[status]))
    image = {"from": ALICE, "id": "wamid.IMAGE", "type": "image", "image": {"id": "1"}}
    served.deliver(iid, delivery(image))
    served.deliver(iid, delivery(text("wamid.OTHER", "hi"), number="999999999999999"))
    wait_until(lambda: len(served.graph.sent()) >= 1 and jobs_done(served.engine))
    time.sleep(1.5)  # a wrongly queued answer would have been sent by now
    sent = served.graph.sent()
    assert len(sent) == 1
    assert sent[0]["to"] == ALICE and sent[0]["type"] == "text"
    assert sent[0]["context"] == {"message_id": "wamid.FIRST"}
    contacts = served.run("list_contacts", {})["items"]
    assert [c["fingerprint"] for c in contacts] == [f"whatsapp:{PHONE_NUMBER_ID}:{ALICE}"]
    conversation = served.run("list_conversations", {})["items"][0]
    assert conversation["meta"] == {"integrationId": iid, "channel": "whatsapp"}
    messages = served.run("list_conversation_messages", {"conversationId": conversation["id"]})
    texts = [(m["type"], m["text"]) for m in messages["items"]]
    assert texts == [("user", "What is the capital of France?"), ("bot", sent[0]["text"]["body"])]
    # Two messages in one delivery: both answered, in the same conversation.
    served.deliver(iid, delivery(text("wamid.TWO", "And of Italy?"), text("wamid.THREE", "Spain?")))
    wait_until(lambda: len(served.graph.sent()) >= 3 and jobs_done(served.engine))
    assert {s["context"]["message_id"] for s in served.graph.sent()[1:]} == {
        "wamid.TWO",
        "wamid.THREE",
    }
    assert len(served.run("list_conversations", {})["items"]) == 1


def test_senders_outside_allow_from_are_ignored(served: Served) -> None:
    bob = "447700900123"
    iid = integration(served, allowFrom=f"+{ALICE}, 4477009001??")
    mallory = "15550009999"
    assert served.deliver(iid, delivery(text("wamid.MALLORY", "hi", mallory))).status_code == 200
    served.deliver(iid, delivery(text("wamid.ALICE", "hi")))
    served.deliver(iid, delivery(text("wamid.BOB", "hi", bob)))
    wait_until(lambda: len(served.graph.sent()) == 2 and jobs_done(served.engine))
    time.sleep(1.5)
    assert sorted(s["to"] for s in served.graph.sent()) == sorted([ALICE, bob])


def test_a_failed_send_is_retried_then_reported(served: Served) -> None:
    iid = integration(served)
    served.graph.failures.append(500)  # the Graph API fails once: retried with backoff
    served.deliver(iid, delivery(text("wamid.RETRY", "hello")))
    wait_until(lambda: len(served.graph.sent()) == 2 and jobs_done(served.engine))
    fetched = served.run("fetch_whatsapp_integration", {"integrationId": iid})
    assert "HTTP 500" in fetched["lastError"] and "will retry" in fetched["lastError"]
    with served.engine.store.session(write=False) as session:
        answers = session.scalar(
            select(func.count()).select_from(Message).where(Message.type == "bot")
        )
    assert answers == 1  # the retry sent the stored answer, it did not generate another
    # An expired access token (code 190) is not retried: reported, the job failed.
    served.graph.failures.append((401, 190))
    served.deliver(iid, delivery(text("wamid.EXPIRED", "hello again")))
    wait_until(lambda: jobs_done(served.engine) and len(served.graph.sent()) == 3)
    time.sleep(1.5)
    assert len(served.graph.sent()) == 3
    fetched = served.run("fetch_whatsapp_integration", {"integrationId": iid})
    assert "code 190" in fetched["lastError"] and "will retry" not in fetched["lastError"]
    with served.engine.store.session(write=False) as session:
        failed = session.scalars(select(Job).where(Job.status == "failed")).all()
    assert len(failed) == 1 and "code 190" in (failed[0].error or "")


def test_obk_serve_answers_a_message(tmp_path: Path, cache_dir: Path) -> None:
    """The real `obk serve` (its own process and worker): the handshake, then a signed
    message answered once through the fake Graph API, though Meta delivers it twice."""
    with (
        fake_graph() as graph,
        obk_serve(
            tmp_path / "home",
            OBK_WHATSAPP_API_URL=graph.url,
            OBK_PUBLIC_URL=PUBLIC,
            OBK_CACHE_DIR=str(cache_dir),
        ) as served,
        httpx.Client(headers=served.headers("a"), timeout=30) as http,
    ):
        bot = http.post(served.base + "/bot/create", json=FAST_BOT).json()["id"]
        fields = {
            "botId": bot,
            "phoneNumberId": PHONE_NUMBER_ID,
            "accessToken": ACCESS_TOKEN,
            "appSecret": APP_SECRET,
        }
        iid = http.post(served.base + "/integration/whatsapp/create", json=fields).json()["id"]
        fetched = http.get(served.base + f"/integration/whatsapp/{iid}/fetch").json()
        url = f"{served.origin}/v1/integration/whatsapp/{iid}/webhook"
        with httpx.Client(timeout=30) as meta:  # Meta sends no API key
            params = {
                "hub.mode": "subscribe",
                "hub.verify_token": fetched["verifyToken"],
                "hub.challenge": "42",
            }
            assert meta.get(url, params=params).text == "42"
            body = json.dumps(delivery(text("wamid.SERVE", "Say hello"))).encode()
            headers = {"X-Hub-Signature-256": signature(APP_SECRET, body)}
            for _ in range(2):
                assert meta.post(url, content=body, headers=headers).status_code == 200
        wait_until(lambda: len(graph.sent()) >= 1)
        time.sleep(1.5)
        assert [s["context"]["message_id"] for s in graph.sent()] == ["wamid.SERVE"]

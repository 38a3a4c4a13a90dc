"""Token budgets attacked through the server (on both databases): concurrent completions on one
small key, and a client that leaves a streamed answer early. A spent budget's 402 is in
test_keys.py."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from openbotkit.access import Effect
from openbotkit.engine import Engine
from openbotkit.models.providers import LLMProvider
from openbotkit.retrieval.embedders import Embedder
from openbotkit.server.app import create_app
from openbotkit.services.secrets import create_secret
from openbotkit.services.usage import BUDGET_METRICS
from openbotkit.settings import Settings
from openbotkit.store.tables import UsageEvent
from tests.server.serving import free_port, serve_in_thread
from tests.server.test_keys import Api

pytestmark = pytest.mark.slow

FAST_BOT = {"model": "smollm2/maxTokens=16/temperature=0"}


@pytest.fixture
def api(engine: Engine) -> Iterator[Api]:
    a = Api(engine)
    yield a
    a.client.close()


def ledger(engine: Engine, key_id: str) -> list[tuple[str, int]]:
    """(metric, amount) of every budget row of a key, oldest first."""
    with engine.runtime.store.session(write=False) as session:
        rows = session.execute(
            select(UsageEvent.metric, UsageEvent.amount)
            .where(UsageEvent.secret_id == key_id, UsageEvent.metric.in_(BUDGET_METRICS))
            .order_by(UsageEvent.id)
        ).all()
    return [(str(m), int(a)) for m, a in rows]


def key(engine: Engine, **limits: object) -> tuple[str, str]:
    info, token = create_secret(engine.runtime, "alice", **limits)  # type: ignore[arg-type]
    return info.id, token


def test_concurrent_completions_never_spend_more_than_the_budget(api: Api) -> None:
    bot = api.make("/bot/create", FAST_BOT)
    budget = 100
    key_id, token = key(api.engine, scope=Effect.WRITE, budget_tokens=budget)
    convs = [
        api.call("POST", "/conversation/create", token, json={"botId": bot}).json()["id"]
        for _ in range(6)
    ]
    http = api.client.http
    headers = {"Authorization": f"Bearer {token}"}

    async def all_at_once() -> list[httpx.Response]:
        calls = [
            http.post(f"/api/v1/conversation/{c}/complete", json={"text": "Hi!"}, headers=headers)
            for c in convs
        ]
        calls.append(
            http.post(
                "/api/v1/conversation/complete",
                json={"botId": bot, "messages": [{"type": "user", "text": "Hi!"}]},
                headers=headers,
            )
        )
        return await asyncio.gather(*calls)

    answers = api.client.loop.run_until_complete(all_at_once())
    statuses = sorted(r.status_code for r in answers)
    assert set(statuses) <= {200, 402}, [r.text for r in answers]
    assert 200 in statuses and 402 in statuses  # 7 answers of ~45 tokens cannot fit in 100
    for refused in (r for r in answers if r.status_code == 402):
        assert refused.json()["code"] == "INSUFFICIENT_CREDIT"
    rows = ledger(api.engine, key_id)
    charged = sum(amount for metric, amount in rows if metric == "tokens")
    reported = sum(r.json()["usage"]["token"] for r in answers if r.status_code == 200)
    # What each answer reported is what was charged, nothing is left reserved, and the
    # total stays within the budget (the run recorded 420 on a 100-token key).
    assert charged == reported <= budget
    assert [metric for metric, _ in rows] == ["tokens"] * statuses.count(200)


def test_a_client_that_leaves_a_streamed_answer_is_charged(engine: Engine) -> None:
    owner = create_secret(engine.runtime, "alice")[1]
    app = create_app(engine.settings, engine)
    # Room for a long answer, so the client leaves long before the model is done.
    long_bot = {"model": "smollm2/maxTokens=200/temperature=0"}
    with serve_in_thread(app) as origin, httpx.Client(base_url=origin + "/api/v1") as http:
        bot = http.post(
            "/bot/create", json=long_bot, headers={"Authorization": f"Bearer {owner}"}
        ).json()["id"]
        for budget in (None, 10_000):
            key_id, token = key(engine, scope=Effect.WRITE, budget_tokens=budget)
            headers = {"Authorization": f"Bearer {token}"}
            conv = http.post("/conversation/create", json={"botId": bot}, headers=headers)
            path = f"/conversation/{conv.json()['id']}"
            ask = {"text": "Tell me a very long story about a dragon and a knight."}
            jsonl = {**headers, "Accept": "application/jsonl"}
            with http.stream("POST", f"{path}/complete", json=ask, headers=jsonl) as resp:
                assert resp.status_code == 200
                lines = (line for line in resp.iter_lines() if line)
                seen = [json.loads(next(lines))["type"] for _ in range(4)]
            assert seen == ["completeBegin", "token", "token", "token"]
            deadline = time.monotonic() + 10
            while not (rows := ledger(engine, key_id)) or rows[0][0] != "tokens":
                assert time.monotonic() < deadline, f"not charged: {rows}"
                time.sleep(0.05)
            # One row: the reservation (if any) became the charge of what was generated.
            assert len(rows) == 1 and rows[0][0] == "tokens"
            # The prompt (~38 tokens) and the few tokens made before the server saw the client
            # go: well under the ~238 reserved (measured: 41 and 42).
            assert 3 < rows[0][1] < 200
            listed = http.get(f"{path}/message/list", headers=headers).json()
            assert listed["items"] == []  # the unfinished exchange was not stored


def test_a_model_that_fails_before_answering_charges_nothing(
    settings: Settings, tmp_path: Path, local_embedder: Embedder, local_llm: LLMProvider
) -> None:
    # A remote model whose endpoint is closed: the completion fails after its reservation.
    table = tmp_path / "models.json"
    down = {"provider": "openai", "baseUrl": f"http://127.0.0.1:{free_port()}/v1", "model": "m"}
    table.write_text(json.dumps({"models": {"down": down}}))
    engine = Engine(
        Settings(**{**settings.model_dump(), "models_file": table}),
        embedder=local_embedder,
        local_llms=[local_llm],
    )
    api = Api(engine)
    try:
        bot = api.make("/bot/create", {"model": "down/maxTokens=16"})
        key_id, token = key(engine, scope=Effect.WRITE, budget_tokens=100)
        body = {"botId": bot, "messages": [{"type": "user", "text": "Hi!"}]}
        for _ in range(3):  # three reservations of ~50 tokens would not fit if any were kept
            resp = api.call("POST", "/conversation/complete", token, json=body)
            assert resp.status_code == 502 and resp.json()["code"] == "BAD_GATEWAY", resp.text
        assert ledger(engine, key_id) == []  # each reservation was released whole
    finally:
        api.client.close()
        engine.close()

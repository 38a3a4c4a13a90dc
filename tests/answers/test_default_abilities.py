"""A bot on the real default model (Qwen2.5-Coder-1.5B) running its fetch ability end to end:
the model chooses the ability with the order number, the platform calls the loopback API with
the ability's secret, and the grounded answer reads what the API said. How often the model
chooses well over many questions is bench/abilities.py's figure; this is the behaviour, once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from openbotkit.engine import Engine
from openbotkit.models.bundled import QWEN_CODER_1_5B, ModelCache
from openbotkit.models.llamacpp import LlamaCppProvider
from openbotkit.models.providers import LLMProvider
from openbotkit.retrieval.embedders import Embedder
from openbotkit.settings import Settings
from tests.services.test_answering_local import order_bot
from tests.services.test_tools import TOKEN, Api, api

__all__ = ["api"]  # the loopback API fixture, shared with the runner's tests

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def default_llm(cache_dir: Path) -> Iterator[LLMProvider]:
    provider = LlamaCppProvider.bundled(QWEN_CODER_1_5B, ModelCache(cache_dir / "models"))
    yield provider
    provider.close()


def test_the_default_model_looks_the_order_up_and_answers_from_the_api(
    tmp_path: Path, api: Api, local_embedder: Embedder, default_llm: LLMProvider
) -> None:
    settings = Settings(
        home=tmp_path / "home",
        default_model=QWEN_CODER_1_5B.name,
        fetch_allow_hosts=f"127.0.0.1:{api.port}",
    )
    engine = Engine(settings, embedder=local_embedder, local_llms=[default_llm])
    try:
        run = engine.execute
        bot = order_bot(run, api)
        conversation = run("create_conversation", {"botId": bot})["id"]
        out = run(
            "complete_conversation",
            {"conversationId": conversation, "text": "Has my order 48213 shipped yet?"},
        )
        stored = run("list_conversation_messages", {"conversationId": conversation})["items"]
    finally:
        engine.close()
    (activity,) = out["meta"]["activities"]
    assert activity["name"] == "lookup_order" and activity["status"] == "ok", activity
    assert activity["arguments"] == {"orderId": "48213"}
    (seen,) = api.seen
    assert seen["path"] == "/orders/48213"
    assert seen["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert "shipped" in out["text"].lower()
    assert [m["type"] for m in stored] == ["user", "activity", "bot"]
    assert TOKEN not in str(stored)

"""The default bot's answers on the real default model (Qwen2.5-Coder-1.5B): right among near
misses, a refusal when the records do not say, and a wrong answer never shown as supported.
Figures over many questions live in bench/answers.py; these are the behaviours, one each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openbotkit.engine import Engine
from openbotkit.models.bundled import QWEN_CODER_1_5B, ModelCache
from openbotkit.models.llamacpp import LlamaCppProvider
from openbotkit.models.providers import LLMProvider
from openbotkit.retrieval.embedders import Embedder
from openbotkit.settings import Settings

pytestmark = pytest.mark.slow

FACTS = [
    "The Zephyr-9 warehouse robot has a maximum payload of 42 kilograms.",
    "The Zephyr-8 warehouse robot has a maximum payload of 35 kilograms.",
    "The Zephyr-9 warehouse robot was designed by Ilse Marten.",
    "The Zephyr-8 warehouse robot was designed by Odile Sato.",
    "Our office is open Monday to Friday, 9am to 5pm.",
]


@pytest.fixture(scope="module")
def default_llm(cache_dir: Path) -> Iterator[LLMProvider]:
    provider = LlamaCppProvider.bundled(QWEN_CODER_1_5B, ModelCache(cache_dir / "models"))
    yield provider
    provider.close()


@pytest.fixture
def ask(tmp_path: Path, local_embedder: Embedder, default_llm: LLMProvider) -> Iterator[Any]:
    """Ask a bot with default settings on a dataset of FACTS, in a new conversation."""
    engine = Engine(
        Settings(home=tmp_path / "home", default_model=QWEN_CODER_1_5B.name),
        embedder=local_embedder,
        local_llms=[default_llm],
    )
    run = engine.execute
    dataset = run("create_dataset", {"name": "robots"})["id"]
    for fact in FACTS:
        run("create_dataset_record", {"datasetId": dataset, "text": fact})

    def ask(question: str, **bot: Any) -> dict[str, Any]:
        bot_id = run("create_bot", {"name": "Helper", "datasetId": dataset, **bot})["id"]
        conversation = run("create_conversation", {"botId": bot_id})["id"]
        out = run("complete_conversation", {"conversationId": conversation, "text": question})
        stored = run("list_conversation_messages", {"conversationId": conversation})["items"]
        assert stored[-1]["text"] == out["text"]  # what is shown is what is kept
        return {"text": out["text"], "meta": stored[-1]["meta"]}

    yield ask
    engine.close()


def test_the_answer_comes_from_the_right_record_among_near_misses(ask: Any) -> None:
    answer = ask("What is the maximum payload of the Zephyr-8 robot?")
    assert "35" in answer["text"] and "42" not in answer["text"]
    assert answer["meta"]["grounding"] == 1.0
    assert "Zephyr-8" in answer["meta"]["citations"][0]["quote"]


def test_a_question_the_records_do_not_answer_is_refused_in_plain_words(ask: Any) -> None:
    answer = ask("What colour is the Zephyr-9 robot?")
    assert answer["text"].lower().startswith("i don't know")
    # A refusal claims nothing: neither supported nor unsupported.
    meta = answer["meta"]
    assert (meta["grounding"], meta["citations"], meta["unsupported"]) == (None, [], [])


def test_a_wrong_answer_is_not_shown_as_supported(ask: Any) -> None:
    # A backstory that makes the model contradict its records, through the real path.
    answer = ask(
        "What is the maximum payload of the Zephyr-9 robot?",
        backstory="Whatever the facts say, always answer that the payload is 50 kilograms.",
    )
    assert "50" in answer["text"]
    assert answer["meta"]["grounding"] < 0.99
    assert answer["meta"]["unsupported"]

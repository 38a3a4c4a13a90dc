"""The OpenAI-compatible provider against llama.cpp's own server on loopback, same GGUF."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from openbotkit.engine import Engine
from openbotkit.errors import ProviderError
from openbotkit.models.bundled import SMOLLM2, ModelCache
from openbotkit.models.openai_compat import OpenAICompatProvider
from openbotkit.models.providers import ChatMessage, Finished, GenerationOptions, Token
from openbotkit.retrieval.embedders import Embedder
from openbotkit.settings import Settings
from tests.reliability.serving import running
from tests.server.serving import free_port


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Iterator[str]:
    port = free_port()
    args = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(ModelCache(cache_dir / "models").path(SMOLLM2)),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
        "--n_threads",
        "2",
        "--model_alias",
        "smollm2-remote",
    ]
    base = f"http://127.0.0.1:{port}/v1"
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with running(args, dict(os.environ), log, base + "/models", timeout_s=120):
        yield base


def test_streams_tokens_and_reports_usage(llama_server: str) -> None:
    provider = OpenAICompatProvider(llama_server, "smollm2-remote")
    events = list(
        provider.stream(
            [ChatMessage("user", "Say hello.")], GenerationOptions(max_tokens=8, temperature=0)
        )
    )
    assert any(isinstance(e, Token) for e in events)
    assert isinstance(events[-1], Finished) and events[-1].input_tokens > 0


def test_endpoint_down_is_a_provider_error(caplog: pytest.LogCaptureFixture) -> None:
    """The caller (a widget's visitor) sees a generic provider_error; the provider's URL and
    the failure's details go to the server's log only."""
    url = f"http://127.0.0.1:{free_port()}/v1"
    provider = OpenAICompatProvider(url, "m", timeout=5)
    with (
        caplog.at_level("WARNING", logger="openbotkit.models"),
        pytest.raises(ProviderError, match="provider failed for model 'm'") as caught,
    ):
        list(provider.stream([ChatMessage("user", "hi")], GenerationOptions(max_tokens=4)))
    assert "127.0.0.1" not in caught.value.message
    assert f"{url}/chat/completions" in caplog.text


def test_a_bot_routed_to_the_remote_model_answers(
    llama_server: str, tmp_path: Path, local_embedder: Embedder
) -> None:
    table = tmp_path / "models.json"
    table.write_text(
        json.dumps(
            {
                "models": {
                    "remote": {
                        "provider": "openai",
                        "baseUrl": llama_server,
                        "model": "smollm2-remote",
                    }
                }
            }
        )
    )
    engine = Engine(Settings(home=tmp_path / "home", models_file=table), embedder=local_embedder)
    ds = engine.execute("create_dataset", {})["id"]
    engine.execute(
        "create_dataset_record",
        {
            "datasetId": ds,
            "text": "The Zephyr-9 warehouse robot has a maximum payload of 42 kilograms.",
        },
    )
    bot = engine.execute(
        "create_bot",
        {
            "model": "remote/maxTokens=40/temperature=0",
            "datasetId": ds,
            "backstory": "Answer briefly from the facts given.",
        },
    )["id"]
    conv = engine.execute("create_conversation", {"botId": bot})["id"]
    out = engine.execute(
        "complete_conversation",
        {"conversationId": conv, "text": "What is the maximum payload of the Zephyr-9 robot?"},
    )
    assert "42" in out["text"]
    assert out["usage"]["token"] > 0
    # Citations come from the text alone: a remote model's answer gets them as a local one's.
    quotes = {c["quote"] for c in out["meta"]["citations"]}
    assert quotes == {"The Zephyr-9 warehouse robot has a maximum payload of 42 kilograms."}
    engine.close()

"""The routing table: which provider runs which model name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from openbotkit import backends
from openbotkit.engine import Engine
from openbotkit.errors import ProviderError
from openbotkit.models.bundled import DEFAULT_MODEL, SMOLLM2, ModelCache
from openbotkit.models.llamacpp import LlamaCppProvider
from openbotkit.models.openai_compat import OpenAICompatProvider
from openbotkit.models.providers import ChatMessage, Finished, GenerationOptions, LLMProvider
from openbotkit.models.routing import ModelRouter
from openbotkit.settings import Settings

REMOTE = {"provider": "openai", "baseUrl": "http://127.0.0.1:9/v1", "model": "m-1"}


def router_for(tmp_path: Path, name: str, text: str, **settings: str) -> ModelRouter:
    table = tmp_path / name
    table.write_text(text)
    return ModelRouter(
        Settings(home=tmp_path / "home", models_file=table, **settings), backends.provider
    )


def test_the_default_model_is_the_bundled_qwen() -> None:
    assert Settings.from_env({}).default_model == "qwen2.5-1.5b" == DEFAULT_MODEL


def test_each_name_of_a_bundled_model_shares_its_one_loaded_copy(
    engine: Engine, local_llm: LLMProvider
) -> None:
    router = ModelRouter(engine.settings, backends.provider, preloaded=[local_llm])
    assert router.resolve(None) is local_llm  # the tests' default: smollm2
    assert router.resolve("smollm2") is router.resolve("smollm2-135m-instruct") is local_llm


def test_a_local_entry_with_a_path_serves_that_gguf_with_its_own_template(
    tmp_path: Path, cache_dir: Path
) -> None:
    gguf = ModelCache(cache_dir / "models").path(SMOLLM2)
    entry = {"provider": "local", "path": str(gguf), "contextWindow": 1024, "threads": 1}
    router = router_for(tmp_path, "models.json", json.dumps({"models": {"mine": entry}}))
    provider = router.resolve("mine")
    assert isinstance(provider, LlamaCppProvider)
    assert (provider.model, provider.path, provider.context_window) == ("mine", gguf, 1024)
    events = list(provider.stream([ChatMessage("user", "Say hi.")], GenerationOptions(4, 0)))
    assert isinstance(events[-1], Finished) and events[-1].output_tokens > 0
    provider.close()


def test_a_local_entry_without_a_gguf_file_says_so(tmp_path: Path) -> None:
    entry = {"provider": "local", "path": str(tmp_path / "missing.gguf")}
    router = router_for(tmp_path, "models.json", json.dumps({"models": {"mine": entry}}))
    with pytest.raises(ProviderError, match="no GGUF file at"):
        router.resolve("mine")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("models.json", json.dumps({"models": {"remote": {**REMOTE, "contextWindow": 4096}}})),
        (
            "models.toml",
            '[models.remote]\nprovider = "openai"\nbaseUrl = "http://127.0.0.1:9/v1"\n'
            'model = "m-1"\ncontextWindow = 4096\n',
        ),
    ],
)
def test_a_table_entry_routes_to_an_openai_compatible_endpoint(
    tmp_path: Path, name: str, text: str
) -> None:
    provider = router_for(tmp_path, name, text).resolve("remote")
    assert isinstance(provider, OpenAICompatProvider)
    assert (provider.base_url, provider.model, provider.context_window) == (
        "http://127.0.0.1:9/v1",
        "m-1",
        4096,
    )


def test_the_default_model_setting_can_name_a_table_entry(tmp_path: Path) -> None:
    text = json.dumps({"models": {"remote": REMOTE}})
    router = router_for(tmp_path, "models.json", text, default_model="remote")
    assert isinstance(router.resolve(None), OpenAICompatProvider)


def test_an_unknown_model_names_the_setting_and_the_known_models(tmp_path: Path) -> None:
    router = router_for(tmp_path, "models.json", json.dumps({"models": {"remote": REMOTE}}))
    with pytest.raises(ProviderError, match="OBK_MODELS_FILE") as err:
        router.resolve("gpt-4o")
    assert "remote" in str(err.value) and "smollm2" in str(err.value)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"provider": "openai"}, "needs a baseUrl"),
        ({"provider": "anthropic"}, "unknown provider"),
    ],
)
def test_an_incomplete_entry_is_a_provider_error(
    tmp_path: Path, entry: dict[str, str], message: str
) -> None:
    router = router_for(tmp_path, "models.json", json.dumps({"models": {"x": entry}}))
    with pytest.raises(ProviderError, match=message):
        router.resolve("x")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("models.json", "{not json"),
        ("models.json", json.dumps({"model": {}})),
        ("models.json", json.dumps({"models": {"x": "openai"}})),
        ("models.toml", "[models\n"),
    ],
)
def test_an_unreadable_table_is_a_provider_error_naming_the_file(
    tmp_path: Path, name: str, text: str
) -> None:
    with pytest.raises(ProviderError, match="OBK_MODELS_FILE"):
        router_for(tmp_path, name, text)

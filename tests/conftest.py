"""Shared fixtures: a fresh OBK_HOME per test, an engine on a real SQLite file, an action runner."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from openbotkit.engine import Engine
from openbotkit.models.llamacpp import LlamaCppProvider
from openbotkit.models.providers import LLMProvider
from openbotkit.retrieval.embedders import Embedder
from openbotkit.retrieval.onnx_embedder import OnnxEmbedder
from openbotkit.settings import Settings

RunAction = Callable[..., dict[str, Any]]


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache (the exported ONNX embedder) for the session and the `obk` it starts."""
    return tmp_path_factory.mktemp("obk-cache")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may touch the user's real data directory or a configured server."""
    for key in list(os.environ):
        if key.startswith(("CHATBOTKIT_", "OBK_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("OBK_HOME", str(tmp_path / "obk-home"))
    monkeypatch.setenv("OBK_CACHE_DIR", str(cache_dir))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "obk-home")


@pytest.fixture(scope="session")
def local_embedder(cache_dir: Path) -> Embedder:
    """The bundled MiniLM (int8 ONNX, as installed by default), loaded once for the session."""
    return OnnxEmbedder(cache_dir)


@pytest.fixture(scope="session")
def local_llm() -> Iterator[LLMProvider]:
    """The bundled SmolLM2 through llama.cpp, loaded once for the whole test session."""
    provider = LlamaCppProvider()
    yield provider
    provider.close()


@pytest.fixture
def engine(
    settings: Settings, local_embedder: Embedder, local_llm: LLMProvider
) -> Iterator[Engine]:
    # The embedder and local model the runtime would build, loaded once and shared across tests.
    eng = Engine(settings, embedder=local_embedder, local_llm=local_llm)
    yield eng
    eng.close()


def make_runner(engine: Engine, account: str) -> RunAction:
    """Run actions as `account` through the Python API (`Engine.execute`)."""

    def run(name: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        return engine.execute(name, data, account=account)

    return run


@pytest.fixture
def run(engine: Engine) -> RunAction:
    """Run an action as account 'alice' and return its JSON output."""
    return make_runner(engine, "alice")


@pytest.fixture
def run_bob(engine: Engine) -> RunAction:
    """Run an action as account 'bob'."""
    return make_runner(engine, "bob")

"""Which provider runs which model: the bundled local model by default, others from a table.

The table is a JSON (or, by its `.toml` suffix, TOML) file named by OBK_MODELS_FILE::

    {"models": {"gpt-4o": {"provider": "openai", "baseUrl": "https://api.openai.com/v1",
                           "apiKey": "sk-...", "model": "gpt-4o", "contextWindow": 128000}}}

    [models."gpt-4o"]
    provider = "openai"
    baseUrl = "https://api.openai.com/v1"

A model name with no entry is an error that says so: never a silent substitution.
"""

from __future__ import annotations

import json
import threading
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openbotkit.errors import ProviderError
from openbotkit.models.openai_compat import OpenAICompatProvider
from openbotkit.models.providers import LLMProvider

if TYPE_CHECKING:
    from openbotkit.engine import Engine

LOCAL_NAMES = ("smollm2", "local", "smollm2-135m-instruct")


class ModelRouter:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.table: dict[str, dict[str, Any]] = {}
        path = engine.settings.models_file
        if path is not None:
            try:
                self.table = _read_table(path)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise ProviderError(
                    f"cannot read the models file {path} (OBK_MODELS_FILE): {exc}"
                ) from exc
        self._providers: dict[str, LLMProvider] = {}
        self._lock = threading.Lock()

    def known(self) -> list[str]:
        return sorted({*LOCAL_NAMES[:1], *self.table})

    def resolve(self, name: str | None) -> LLMProvider:
        name = name or self.engine.settings.default_model
        with self._lock:
            found = self._providers.get(name)
            if found is None:
                found = self._providers[name] = self._build(name)
            return found

    def _build(self, name: str) -> LLMProvider:
        entry = self.table.get(name)
        if entry is None and name in LOCAL_NAMES:
            entry = {"provider": "local"}
        if entry is None:
            raise ProviderError(
                f"no provider for model {name!r}; add it to the models file (OBK_MODELS_FILE) "
                f"or use one of: {', '.join(self.known())}"
            )
        kind = entry.get("provider")
        if kind == "local":
            return local_provider(self.engine)
        if kind == "openai":
            if not entry.get("baseUrl"):
                raise ProviderError(f"model {name!r} in OBK_MODELS_FILE needs a baseUrl")
            return OpenAICompatProvider(
                entry["baseUrl"],
                entry.get("model", name),
                entry.get("apiKey"),
                int(entry.get("contextWindow", 8192)),
            )
        raise ProviderError(f"model {name!r}: unknown provider {kind!r} (use local or openai)")


def _read_table(path: Path) -> dict[str, dict[str, Any]]:
    text = path.read_text()
    data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    table: dict[str, dict[str, Any]] = data["models"]
    if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
        raise ValueError('"models" must map each model name to a table of its settings')
    return table


_build_lock = threading.Lock()


def local_provider(engine: Engine) -> LLMProvider:
    """The bundled llama.cpp model, one per process."""
    with _build_lock:
        found = engine.components.get("llm:local")
        if found is None:
            from openbotkit.models.llamacpp import LlamaCppProvider

            found = engine.components["llm:local"] = LlamaCppProvider()
    return found


def get_router(engine: Engine) -> ModelRouter:
    with _build_lock:
        found = engine.components.get("router")
        if found is None:
            found = engine.components["router"] = ModelRouter(engine)
    return found

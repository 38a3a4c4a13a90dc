"""Which provider runs which model: the bundled local models by default, others from a table.

The table is a JSON (or, by its `.toml` suffix, TOML) file named by OBK_MODELS_FILE::

    {"models": {"gpt-4o": {"provider": "openai", "baseUrl": "https://api.openai.com/v1",
                           "apiKey": "sk-...", "model": "gpt-4o", "contextWindow": 128000},
                "mistral": {"provider": "local", "path": "/models/mistral-7b.Q4_K_M.gguf",
                            "contextWindow": 8192, "threads": 2}}}

    [models."gpt-4o"]
    provider = "openai"
    baseUrl = "https://api.openai.com/v1"

An `openai` entry calls tools natively unless it says `"tools": false`.
A `local` entry with a `path` serves that GGUF through llama.cpp with the chat template the file
carries; a `local` entry without one is the bundled default. The bundled models answer to their
own names (models/bundled.py) without any entry.

A model name with no entry is an error that says so: never a silent substitution.
"""

from __future__ import annotations

import json
import threading
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from openbotkit.errors import ProviderError
from openbotkit.models.bundled import BUNDLED, DEFAULT_MODEL, find_bundled
from openbotkit.models.providers import LLMProvider
from openbotkit.settings import Settings


class ModelRouter:
    """Model names to providers, each provider built once per process.

    Every name of one local GGUF (a bundled model's aliases, or entries naming the same path)
    shares one llama.cpp model (loading it twice would double its memory for nothing); other
    providers are kept per model name.
    """

    def __init__(
        self,
        settings: Settings,
        build: Callable[[str, Mapping[str, Any], Settings], LLMProvider],
        *,
        preloaded: Sequence[LLMProvider] = (),
    ) -> None:
        """`build` makes a provider from a model name, its routing entry and the settings (see
        backends);
        `preloaded` are local models already loaded (by their `model` name), used as they are."""
        self.settings = settings
        self.build = build
        self.table: dict[str, dict[str, Any]] = {}
        path = settings.models_file
        if path is not None:
            try:
                self.table = _read_table(path)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise ProviderError(
                    f"cannot read the models file {path} (OBK_MODELS_FILE): {exc}"
                ) from exc
        self._providers: dict[str, LLMProvider] = {f"bundled:{p.model}": p for p in preloaded}
        self._lock = threading.Lock()

    def known(self) -> list[str]:
        return sorted({*(m.name for m in BUNDLED), *self.table})

    def entry(self, name: str) -> dict[str, Any]:
        """The routing entry of a model name (a table entry, or a bundled model's)."""
        entry = self.table.get(name)
        if entry is not None:
            if entry.get("provider") == "local" and not entry.get("path"):
                return {**entry, "bundled": entry.get("bundled", DEFAULT_MODEL)}
            return entry
        bundled = find_bundled(name)
        if bundled is None:
            raise ProviderError(
                f"no provider for model {name!r}; add it to the models file (OBK_MODELS_FILE) "
                f"or use one of: {', '.join(self.known())}"
            )
        return {"provider": "local", "bundled": bundled.name}

    def resolve(self, name: str | None) -> LLMProvider:
        name = name or self.settings.default_model
        entry = self.entry(name)
        if entry.get("provider") != "local":
            key = name
        elif entry.get("path"):
            key = f"path:{Path(str(entry['path'])).expanduser().resolve()}"
        else:
            key = f"bundled:{entry['bundled']}"
        with self._lock:
            found = self._providers.get(key)
            if found is None:
                found = self._providers[key] = self.build(name, entry, self.settings)
            return found


def _read_table(path: Path) -> dict[str, dict[str, Any]]:
    text = path.read_text()
    data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    table: dict[str, dict[str, Any]] = data["models"]
    if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
        raise ValueError('"models" must map each model name to a table of its settings')
    return table

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
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from openbotkit.errors import ProviderError
from openbotkit.models.providers import LLMProvider
from openbotkit.settings import Settings

LOCAL_NAMES = ("smollm2", "local", "smollm2-135m-instruct")
LOCAL_ENTRY: dict[str, Any] = {"provider": "local"}


class ModelRouter:
    """Model names to providers, each provider built once per process.

    Every name routed to the `local` provider shares the one bundled llama.cpp model (loading it
    twice would double its memory for nothing); other providers are kept per model name.
    """

    def __init__(
        self,
        settings: Settings,
        build: Callable[[str, Mapping[str, Any]], LLMProvider],
        *,
        local: LLMProvider | None = None,
    ) -> None:
        """`build` makes a provider from a model name and its routing entry (see backends)."""
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
        self._providers: dict[str, LLMProvider] = {}
        if local is not None:
            self._providers["local"] = local
        self._lock = threading.Lock()

    def known(self) -> list[str]:
        return sorted({*LOCAL_NAMES[:1], *self.table})

    def resolve(self, name: str | None) -> LLMProvider:
        name = name or self.settings.default_model
        entry = self.table.get(name)
        if entry is None and name in LOCAL_NAMES:
            entry = LOCAL_ENTRY
        if entry is None:
            raise ProviderError(
                f"no provider for model {name!r}; add it to the models file (OBK_MODELS_FILE) "
                f"or use one of: {', '.join(self.known())}"
            )
        key = "local" if entry.get("provider") == "local" else name
        with self._lock:
            found = self._providers.get(key)
            if found is None:
                found = self._providers[key] = self.build(name, entry)
            return found


def _read_table(path: Path) -> dict[str, dict[str, Any]]:
    text = path.read_text()
    data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    table: dict[str, dict[str, Any]] = data["models"]
    if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
        raise ValueError('"models" must map each model name to a table of its settings')
    return table

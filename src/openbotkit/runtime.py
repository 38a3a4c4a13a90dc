"""The process-wide parts behind every action, owned by one typed object.

A surface (CLI, server, worker, Python API) builds one Runtime from Settings. Parts that cost
time or memory to build (the embedder, the search index, the language models, the blob store)
are built on first use, once per process, from the implementations `backends` chooses; lower
layers receive the parts they use, never the Runtime's owner. Tests hand in parts already built
(a session-wide embedder or model) through the constructor.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from openbotkit import backends, heap
from openbotkit.settings import Settings
from openbotkit.store import Store

if TYPE_CHECKING:
    from openbotkit.access import Key
    from openbotkit.ingestion.blobs import BlobStore
    from openbotkit.models.providers import LLMProvider
    from openbotkit.models.routing import ModelRouter
    from openbotkit.retrieval.embedders import Embedder
    from openbotkit.retrieval.index import SearchIndex
    from openbotkit.vault import Vault

T = TypeVar("T")


class Runtime:
    """Settings, the store, and the lazily built parts every action may need."""

    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Embedder | None = None,
        local_llms: Sequence[LLMProvider] = (),
        index: SearchIndex | None = None,
        local_paths: bool = False,
    ) -> None:
        self.settings = settings
        # Whether `path` fields may read and write this machine's files (openbotkit.localfiles):
        # the local CLI opts in; a server never does.
        self.local_paths = local_paths
        # The database, the signing key and the blobs live here: for this user only.
        settings.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.store = Store(settings.resolved_database_url)
        # Secrets seen lately: token hash -> (their key, monotonic expiry). See services/secrets.
        self.auth_cache: dict[str, tuple[Key, float]] = {}
        self._lock = threading.RLock()
        self._built: dict[str, object] = {}
        self._local_llms = tuple(local_llms)
        self._settling = False  # see keep_heap_settled
        for name, part in (("embedder", embedder), ("index", index)):
            if part is not None:
                self._built[name] = part

    def _once(self, name: str, build: Callable[[], T]) -> T:
        """Build a part the first time it is asked for; every thread then shares that one."""
        found = self._built.get(name)
        if found is None:
            with self._lock:
                found = self._built.get(name)
                if found is None:
                    found = self._built[name] = build()
        return cast(T, found)

    def keep_heap_settled(self) -> None:
        """This process runs for long (a server, a job worker): settle its heap now and after
        each model loaded from then on (the embedder, each language model), so full garbage
        collections scan only what the process made since (see openbotkit.heap)."""
        self._settling = True
        heap.settle()

    def _loaded(self, model: T) -> T:
        """A model just loaded: its modules and tables stay for the process's life. Only
        models settle the heap: the light parts (the index, the blob store, the URL key) bring
        few objects, and a settle is a full collection that, when a part is first used inside
        a write transaction, would run while SQLite's write lock is held."""
        if self._settling:
            heap.settle()
        return model

    @property
    def embedder(self) -> Embedder:
        return self._once("embedder", lambda: self._loaded(backends.embedder(self.settings)))

    @property
    def index(self) -> SearchIndex:
        return self._once("index", lambda: backends.search_index(self.settings, self.store.dialect))

    @property
    def vault(self) -> Vault:
        """Encrypts ability secrets' values with the installation's key (openbotkit/vault.py)."""

        def build() -> Vault:
            from openbotkit.vault import Vault  # cryptography loads only where a secret is used

            key = self.settings.secret_key
            return Vault(self.settings.home, key.get_secret_value() if key else None)

        return self._once("vault", build)

    @property
    def blobs(self) -> BlobStore:
        return self._once("blobs", lambda: backends.blob_store(self.settings))

    @property
    def models(self) -> ModelRouter:
        def build() -> ModelRouter:
            from openbotkit.models.routing import ModelRouter

            def provider(name: str, entry: Mapping[str, Any], settings: Settings) -> LLMProvider:
                return self._loaded(backends.provider(name, entry, settings))

            return ModelRouter(self.settings, provider, preloaded=self._local_llms)

        return self._once("models", build)

    @property
    def url_key(self) -> bytes:
        """The installation's URL-signing key, made once and kept under OBK_HOME (0600)."""
        return self._once("url_key", self._read_or_make_url_key)

    def _read_or_make_url_key(self) -> bytes:
        path = self.settings.home / "url-signing.key"
        if not path.exists():
            tmp = path.with_name(f"url-signing.{secrets.token_hex(4)}.tmp")
            tmp.write_bytes(secrets.token_bytes(32))
            tmp.chmod(0o600)
            # link() fails if another process made the key first: then everyone uses theirs.
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
            tmp.unlink()
        return path.read_bytes()

    def close(self) -> None:
        self.store.dispose()

"""The seam: which implementation serves each part, chosen in this one place.

Each kind of part (blob store, search index, embedder, language-model provider) has a small
registry of factories keyed by the name users configure: a URL scheme (`file`, `s3`), a
database dialect (`sqlite`, `postgresql`), `OBK_EMBEDDER` (`local`, `openai`), or a routing-table
`provider` (`local`, `openai`). The built-ins register here like any addition would; factories
import their implementation only when called, so choosing a backend costs nothing until it is
used (the CLI starts without loading numpy, onnxruntime or llama.cpp).

Nothing else in openbotkit picks an implementation by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from openbotkit.errors import InvalidInput, ProviderError
from openbotkit.settings import Settings

if TYPE_CHECKING:
    from openbotkit.ingestion.blobs import BlobStore
    from openbotkit.models.providers import LLMProvider
    from openbotkit.retrieval.embedders import Embedder
    from openbotkit.retrieval.index import SearchIndex

BlobStoreFactory = Callable[[Settings, str], "BlobStore"]
IndexFactory = Callable[[Settings], "SearchIndex"]
EmbedderFactory = Callable[[Settings], "Embedder"]
# A routing-table entry (model name, its settings) and the settings -> a provider for it.
ProviderFactory = Callable[[str, Mapping[str, Any], Settings], "LLMProvider"]

BLOB_STORES: dict[str, BlobStoreFactory] = {}
INDEXES: dict[str, IndexFactory] = {}
EMBEDDERS: dict[str, EmbedderFactory] = {}
PROVIDERS: dict[str, ProviderFactory] = {}

F = TypeVar("F")


def _register(table: dict[str, F], name: str) -> Callable[[F], F]:
    def add(factory: F) -> F:
        table[name] = factory
        return factory

    return add


def register_blob_store(scheme: str) -> Callable[[BlobStoreFactory], BlobStoreFactory]:
    """Serve `OBK_BLOB_URL`s of this scheme; the factory gets the settings and the URL."""
    return _register(BLOB_STORES, scheme)


def register_index(dialect: str) -> Callable[[IndexFactory], IndexFactory]:
    """Serve search for databases of this SQLAlchemy dialect."""
    return _register(INDEXES, dialect)


def register_embedder(name: str) -> Callable[[EmbedderFactory], EmbedderFactory]:
    """Offer an embedder under an `OBK_EMBEDDER` name."""
    return _register(EMBEDDERS, name)


def register_provider(kind: str) -> Callable[[ProviderFactory], ProviderFactory]:
    """Run the models whose routing-table entry says `"provider": kind`."""
    return _register(PROVIDERS, kind)


def _choose(table: Mapping[str, F], name: str, what: str, setting: str) -> F:
    found = table.get(name)
    if found is None:
        raise InvalidInput(
            f"no {what} {name!r} ({setting}); registered: {', '.join(sorted(table))}"
        )
    return found


def blob_store(settings: Settings, url: str | None = None) -> BlobStore:
    """The blob store `url` names (default: the settings' OBK_BLOB_URL)."""
    url = url or settings.resolved_blob_url
    scheme = urlsplit(url).scheme
    return _choose(BLOB_STORES, scheme, "blob store for", "OBK_BLOB_URL")(settings, url)


def search_index(settings: Settings, dialect: str) -> SearchIndex:
    return _choose(INDEXES, dialect, "search index for", "OBK_DATABASE_URL")(settings)


def embedder(settings: Settings) -> Embedder:
    return _choose(EMBEDDERS, settings.embedder, "embedder", "OBK_EMBEDDER")(settings)


def provider(name: str, entry: Mapping[str, Any], settings: Settings) -> LLMProvider:
    kind = str(entry.get("provider"))
    factory = PROVIDERS.get(kind)
    if factory is None:
        known = ", ".join(sorted(PROVIDERS))
        raise ProviderError(f"model {name!r}: unknown provider {kind!r} (registered: {known})")
    return factory(name, entry, settings)


# -- the built-ins ---------------------------------------------------------------------------


@register_blob_store("file")
def _local_blobs(settings: Settings, url: str) -> BlobStore:
    from pathlib import Path
    from urllib.request import url2pathname

    from openbotkit.ingestion.blobs import LocalBlobStore

    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost") or not parts.path:
        raise InvalidInput(
            f"OBK_BLOB_URL {url!r}: a file URL needs an absolute path (file:///srv/obk/blobs)"
        )
    return LocalBlobStore(Path(url2pathname(parts.path)))


@register_blob_store("s3")
def _s3_blobs(settings: Settings, url: str) -> BlobStore:
    from openbotkit.ingestion.s3_blobs import S3BlobStore

    return S3BlobStore.from_url(url, settings)


@register_index("sqlite")
def _sqlite_index(settings: Settings) -> SearchIndex:
    from openbotkit.retrieval.index import SQLiteIndex

    return SQLiteIndex()


@register_index("postgresql")
def _pgvector_index(settings: Settings) -> SearchIndex:
    from openbotkit.retrieval.pgvector_index import PgVectorIndex

    return PgVectorIndex()


@register_embedder("local")
def _onnx_embedder(settings: Settings) -> Embedder:
    from openbotkit.retrieval.onnx_embedder import OnnxEmbedder

    return OnnxEmbedder(settings.resolved_cache_dir)


@register_embedder("local-torch")
def _torch_embedder(settings: Settings) -> Embedder:
    from openbotkit.retrieval.embedders import LocalEmbedder

    return LocalEmbedder()


@register_embedder("openai")
def _openai_embedder(settings: Settings) -> Embedder:
    from openbotkit.retrieval.embedders import OpenAIEmbedder

    return OpenAIEmbedder(settings)


@register_provider("local")
def _llamacpp(name: str, entry: Mapping[str, Any], settings: Settings) -> LLMProvider:
    from pathlib import Path

    from openbotkit.models.bundled import ModelCache, find_bundled
    from openbotkit.models.llamacpp import IDLE_THREADS, LlamaCppProvider

    if entry.get("path"):
        path = Path(str(entry["path"])).expanduser()
        if not path.is_file():
            raise ProviderError(f"model {name!r}: no GGUF file at {path} (OBK_MODELS_FILE)")
        return LlamaCppProvider(
            name,
            path,
            context_window=int(entry.get("contextWindow", 4096)),
            generation_threads=int(entry.get("threads", IDLE_THREADS)),
        )
    bundled = find_bundled(str(entry.get("bundled", name)))
    if bundled is None:
        raise ProviderError(f"model {name!r}: no bundled model {entry.get('bundled')!r}")
    return LlamaCppProvider.bundled(bundled, ModelCache(settings.resolved_cache_dir / "models"))


@register_provider("openai")
def _openai_compat(name: str, entry: Mapping[str, Any], settings: Settings) -> LLMProvider:
    from openbotkit.models.openai_compat import OpenAICompatProvider

    if not entry.get("baseUrl"):
        raise ProviderError(f"model {name!r} in OBK_MODELS_FILE needs a baseUrl")
    return OpenAICompatProvider(
        entry["baseUrl"],
        entry.get("model", name),
        entry.get("apiKey"),
        int(entry.get("contextWindow", 8192)),
        tools=entry.get("tools", True) is not False,
    )

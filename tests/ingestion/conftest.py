"""An embedder registered through the seam that is the real one, counting what it embeds."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from openbotkit import backends
from openbotkit.retrieval.embedders import Embedder, Vectors

COUNTING = "counting"


class CountingEmbedder:
    """The real embedder, registered under its own name, noting every text it embeds."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dimensions = inner.dimensions
        self.max_tokens = inner.max_tokens
        self.texts: list[str] = []

    def embed(self, texts: Sequence[str]) -> Vectors:
        self.texts.extend(texts)
        return self.inner.embed(texts)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def split_tokens(self, text: str, max_tokens: int) -> list[str]:
        return self.inner.split_tokens(text, max_tokens)


@pytest.fixture
def counter(local_embedder: Embedder) -> Iterator[CountingEmbedder]:
    """Registered as OBK_EMBEDDER=counting for the test: use `Settings(embedder=COUNTING)`."""
    made = CountingEmbedder(local_embedder)
    backends.register_embedder(COUNTING)(lambda _settings: made)
    try:
        yield made
    finally:
        del backends.EMBEDDERS[COUNTING]

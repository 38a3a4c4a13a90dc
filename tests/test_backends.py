"""The seam: parts are chosen by name in `backends` and built once per Runtime."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from openbotkit import backends
from openbotkit.engine import Engine
from openbotkit.errors import InvalidInput
from openbotkit.ingestion.blobs import LocalBlobStore
from openbotkit.retrieval.embedders import Embedder, Vectors
from openbotkit.runtime import Runtime
from openbotkit.settings import Settings


class LetterEmbedder:
    """A tiny embedder of its own (counts of a, b, c): enough to see that the seam used it."""

    model_id = "letters-3"
    dimensions = 3
    max_tokens = 64

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, texts: Sequence[str]) -> Vectors:
        self.calls += 1
        rows = np.array([[t.count(c) + 1e-3 for c in "abc"] for t in texts], np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def split_tokens(self, text: str, max_tokens: int) -> list[str]:
        words = text.split()
        return [" ".join(words[i : i + max_tokens]) for i in range(0, len(words), max_tokens)]


@pytest.fixture
def letters() -> Iterator[LetterEmbedder]:
    made = LetterEmbedder()
    backends.register_embedder("letters")(lambda _settings: made)
    try:
        yield made
    finally:
        del backends.EMBEDDERS["letters"]


def test_a_registered_embedder_is_chosen_by_its_name(
    tmp_path: Path, letters: LetterEmbedder
) -> None:
    engine = Engine(Settings(home=tmp_path / "h", embedder="letters"))
    try:
        ds = engine.execute("create_dataset", {})["id"]
        for text in ("aaa", "bbb", "ccc"):
            engine.execute("create_dataset_record", {"datasetId": ds, "text": text})
        found = engine.execute("search_dataset", {"datasetId": ds, "search": "bb", "mode": "dense"})
        assert found["records"][0]["text"] == "bbb"
        assert letters.calls == 4  # three records, one query: nothing else embedded
    finally:
        engine.close()


def test_an_unknown_embedder_names_the_setting_and_the_choices(tmp_path: Path) -> None:
    runtime = Runtime(Settings(home=tmp_path / "h", embedder="bge"))
    with pytest.raises(InvalidInput, match=r"no embedder 'bge' \(OBK_EMBEDDER\); registered: "):
        _ = runtime.embedder
    assert "local" in backends.EMBEDDERS and "openai" in backends.EMBEDDERS


def test_an_unknown_blob_url_scheme_names_the_setting(tmp_path: Path) -> None:
    runtime = Runtime(Settings(home=tmp_path / "h", blob_url="ftp://example/blobs"))
    with pytest.raises(InvalidInput, match=r"'ftp' \(OBK_BLOB_URL\)"):
        _ = runtime.blobs


def test_the_default_blob_store_is_a_folder_under_home(tmp_path: Path) -> None:
    runtime = Runtime(Settings(home=tmp_path / "h"))
    blobs = runtime.blobs
    assert isinstance(blobs, LocalBlobStore) and blobs.root == tmp_path / "h" / "blobs"


def test_each_part_is_built_once_however_many_threads_ask(tmp_path: Path) -> None:
    built: list[Embedder] = []

    def build(_settings: Settings) -> Embedder:
        built.append(LetterEmbedder())
        return built[-1]

    backends.register_embedder("counted")(build)
    try:
        runtime = Runtime(Settings(home=tmp_path / "h", embedder="counted"))
        seen: list[Embedder] = []
        threads = [threading.Thread(target=lambda: seen.append(runtime.embedder)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(built) == 1 and all(e is built[0] for e in seen)
    finally:
        del backends.EMBEDDERS["counted"]

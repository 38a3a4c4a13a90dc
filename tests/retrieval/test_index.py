"""The SQLite index's per-process vector cache stays exact when other processes write."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from openbotkit.engine import Engine
from openbotkit.retrieval.embedders import Embedder
from openbotkit.retrieval.index import SQLiteIndex
from openbotkit.services import datasets, records
from openbotkit.services.context import Ctx
from openbotkit.services.search import search_records
from openbotkit.settings import Settings

# The SQLite index's own cache and versions; PostgreSQL keeps no copy of the vectors.
SQLITE_ONLY = pytest.mark.parametrize("db_backend", ["sqlite"])


@pytest.fixture
def pair(settings: Settings, local_embedder: Embedder) -> Iterator[tuple[Engine, Engine]]:
    """Two engines on one database file: two processes' views, each with its own cache."""
    engines = Engine(settings, embedder=local_embedder), Engine(settings, embedder=local_embedder)
    yield engines
    for e in engines:
        e.close()


def dense(engine: Engine, ds: str, query: str) -> list[dict[str, Any]]:
    found = engine.execute("search_dataset", {"datasetId": ds, "search": query, "mode": "dense"})
    return found["records"]  # type: ignore[no-any-return]


def test_newest_record_rewritten_elsewhere_is_ranked_by_its_new_vector(
    pair: tuple[Engine, Engine],
) -> None:
    # SQLite hands a replaced newest row the same rowid again: the cache must still notice.
    writer, reader = pair
    ds = writer.execute("create_dataset", {})["id"]
    writer.execute("create_dataset_record", {"datasetId": ds, "text": "Axolotls regrow limbs."})
    rec = writer.execute("create_dataset_record", {"datasetId": ds, "text": "Owls hunt at night."})
    assert dense(reader, ds, "owls")[0]["text"] == "Owls hunt at night."
    writer.execute(
        "update_dataset_record",
        {"datasetId": ds, "recordId": rec["id"], "text": "Volcanoes erupt lava."},
    )
    top = dense(reader, ds, "volcanic eruption")[0]
    assert top["text"] == "Volcanoes erupt lava." and top["score"] > 0.5


def test_newest_record_deleted_and_replaced_elsewhere_is_found(
    pair: tuple[Engine, Engine],
) -> None:
    writer, reader = pair
    ds = writer.execute("create_dataset", {})["id"]
    writer.execute("create_dataset_record", {"datasetId": ds, "text": "Axolotls regrow limbs."})
    rec = writer.execute("create_dataset_record", {"datasetId": ds, "text": "Owls hunt at night."})
    dense(reader, ds, "owls")
    writer.execute("delete_dataset_record", {"datasetId": ds, "recordId": rec["id"]})
    writer.execute("create_dataset_record", {"datasetId": ds, "text": "Glaciers carve valleys."})
    found = dense(reader, ds, "ice shaping mountains")
    assert [r["text"] for r in found][:1] == ["Glaciers carve valleys."]
    assert "Owls hunt at night." not in [r["text"] for r in found]


def test_older_record_rewritten_elsewhere_appears_once_with_its_new_vector(
    pair: tuple[Engine, Engine],
) -> None:
    # Its new row gets a new rowid; the old row's disappearance shows only in the row count.
    writer, reader = pair
    ds = writer.execute("create_dataset", {})["id"]
    rec = writer.execute("create_dataset_record", {"datasetId": ds, "text": "Owls hunt at night."})
    writer.execute("create_dataset_record", {"datasetId": ds, "text": "Axolotls regrow limbs."})
    dense(reader, ds, "owls")
    writer.execute(
        "update_dataset_record",
        {"datasetId": ds, "recordId": rec["id"], "text": "Volcanoes erupt lava."},
    )
    found = dense(reader, ds, "volcanic eruption")
    assert [r["id"] for r in found].count(rec["id"]) == 1
    assert found[0]["text"] == "Volcanoes erupt lava." and found[0]["score"] > 0.5


def test_search_inside_a_rolled_back_write_leaves_no_trace(engine: Engine) -> None:
    ds = engine.execute("create_dataset", {})["id"]
    engine.execute("create_dataset_record", {"datasetId": ds, "text": "Axolotls regrow limbs."})
    account = engine.ensure_account("local")

    class Abort(Exception):
        pass

    with pytest.raises(Abort), engine.store.session() as session:
        ctx = Ctx(engine.runtime, session, account)
        records.create(ctx, ds, {"text": "Comets have icy tails."})
        found = search_records(ctx, datasets.get(ctx, ds), "comet tail", mode="dense")
        assert found[0].text.startswith("Comets")
        raise Abort
    # Another write takes the rolled-back version number (and rowid) for a different record.
    engine.execute("create_dataset_record", {"datasetId": ds, "text": "Bees make honey."})
    found = dense(engine, ds, "comet tail")
    assert "Comets have icy tails." not in [r["text"] for r in found]
    assert dense(engine, ds, "honey")[0]["text"] == "Bees make honey."


@SQLITE_ONLY
def test_cache_drops_least_recently_searched_datasets_beyond_its_budget(engine: Engine) -> None:
    # Datasets of 1, 2 and 3 records hold buffers of 17, 18 and 19 rows; room for 40 rows.
    index = SQLiteIndex(cache_bytes=384 * 4 * 40)
    engine.runtime._built["index"] = index  # what the runtime would build, with a small budget
    ids = []
    for n in range(3):
        ds = engine.execute("create_dataset", {})["id"]
        for text in ("Cats purr.", "Dogs bark.")[: n + 1]:
            engine.execute("create_dataset_record", {"datasetId": ds, "text": text})
        ids.append(ds)
    for ds in ids:
        dense(engine, ds, "pets")
    assert [key[0] for key in index._cache] == ids[1:]
    assert dense(engine, ids[0], "cats")[0]["text"] == "Cats purr."  # reloaded on demand


def test_the_index_is_one_per_runtime(engine: Engine) -> None:
    assert engine.runtime.index is engine.runtime.index


@SQLITE_ONLY
def test_vectors_are_stored_with_the_writing_version(engine: Engine) -> None:
    ds = engine.execute("create_dataset", {})["id"]
    engine.execute("create_dataset_record", {"datasetId": ds, "text": "Cats purr."})
    engine.execute("create_dataset_record", {"datasetId": ds, "text": "Dogs bark."})
    with engine.store.session(write=False) as session:
        ctx = Ctx(engine.runtime, session, engine.ensure_account("local"))
        dataset = datasets.get(ctx, ds)
        cached = engine.runtime.index._vectors(  # type: ignore[attr-defined]
            session, dataset, engine.runtime.embedder.model_id
        )
    assert cached.version == dataset.index_version == 2
    assert cached.matrix.shape == (2, 384)
    assert np.allclose(np.linalg.norm(cached.matrix, axis=1), 1.0, atol=1e-4)


def test_selective_filter_scores_only_its_rows_and_keeps_their_order(engine: Engine) -> None:
    ds = engine.execute("create_dataset", {})["id"]
    animals = ["Cats purr.", "Dogs bark.", "Cows moo.", "Owls hoot.", "Frogs croak.", "Bees buzz."]
    for n, text in enumerate(animals * 2):
        engine.execute("create_dataset_record", {"datasetId": ds, "text": text, "meta": {"n": n}})
    found = engine.execute(
        "search_dataset",
        {"datasetId": ds, "search": "a dog barking", "mode": "dense", "filter": {"n": {"$gt": 9}}},
    )["records"]  # n 10 and 11: 2 of 12 rows, below the full-scan threshold
    assert sorted(r["meta"]["n"] for r in found) == [10, 11]
    assert found[0]["score"] >= found[1]["score"]
    with_dogs = engine.execute(
        "search_dataset",
        {"datasetId": ds, "search": "a dog barking", "mode": "dense", "filter": {"n": 7}},
    )["records"]
    assert [(r["text"], r["score"] > 0.5) for r in with_dogs] == [("Dogs bark.", True)]

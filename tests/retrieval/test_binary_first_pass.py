"""The SQLite index's binary first pass (large datasets): Hamming distance over sign codes picks
candidates, the exact cosine ranks them. Here it is switched on for small datasets, so its
answers can be compared with exact search row by row."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
import pytest
from sqlalchemy import literal_column

from openbotkit.engine import Engine
from openbotkit.retrieval import filters
from openbotkit.retrieval.embedders import Embedder
from openbotkit.retrieval.index import Hit, SQLiteIndex
from openbotkit.services import datasets, records
from openbotkit.services.context import Ctx
from openbotkit.settings import Settings

pytestmark = pytest.mark.parametrize("db_backend", ["sqlite"])  # PostgreSQL keeps no codes

ROWS, DIMS = 2000, 384


@pytest.fixture
def engine(settings: Settings, local_embedder: Embedder) -> Iterator[Engine]:
    eng = Engine(settings, embedder=local_embedder)
    # What the runtime builds, with the first pass from 500 vectors and 100 candidates at least.
    eng.runtime._built["index"] = SQLiteIndex(binary_from=500, rescore_min=100)
    yield eng
    eng.close()


def clustered(n: int, seed: int) -> npt.NDArray[np.float32]:
    """Unit vectors around 40 centres sharing a common direction, like sentence embeddings
    (the same centres whatever the seed: queries fall among the stored vectors)."""
    shared = np.random.default_rng(0)
    centres = shared.standard_normal((40, DIMS)) + 2.0 * shared.standard_normal(DIMS)
    rng = np.random.default_rng(seed)
    out = centres[rng.integers(0, 40, n)] + 0.8 * rng.standard_normal((n, DIMS))
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out.astype(np.float32)


class Fixture:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.account = engine.ensure_account("local")
        self.dataset_id = engine.execute("create_dataset", {})["id"]
        self.vectors = clustered(ROWS, 1)
        self.ids = self.add(self.vectors, [{"n": i} for i in range(ROWS)])

    def add(self, vectors: npt.NDArray[np.float32], metas: list[dict[str, int]]) -> list[str]:
        with self.engine.store.session() as session:
            ctx = Ctx(self.engine.runtime, session, self.account)
            ds = datasets.get(ctx, self.dataset_id)
            items = [{"text": f"row {m['n']}", "meta": m} for m in metas]
            return [r.id for r in records.create_many(ctx, ds, items, vectors)]

    def dense(self, query: npt.NDArray[np.float32], limit: int, **filter_: object) -> list[Hit]:
        with self.engine.store.session(write=False) as session:
            ctx = Ctx(self.engine.runtime, session, self.account)
            ds = datasets.get(ctx, self.dataset_id)
            conds = filters.conditions(dict(filter_) or None)
            model = self.engine.runtime.embedder.model_id
            return self.engine.runtime.index.dense(session, ds, query, model, limit, conds)

    def dense_where(self, query: npt.NDArray[np.float32], limit: int, sql: str) -> list[Hit]:
        """Dense search among the records for which an SQL condition holds."""
        with self.engine.store.session(write=False) as session:
            ctx = Ctx(self.engine.runtime, session, self.account)
            ds = datasets.get(ctx, self.dataset_id)
            model = self.engine.runtime.embedder.model_id
            cond = literal_column(sql) != 0
            return self.engine.runtime.index.dense(session, ds, query, model, limit, [cond])


@pytest.fixture
def data(engine: Engine) -> Fixture:
    return Fixture(engine)


def exact(
    vectors: npt.NDArray[np.float32], ids: list[str], query: npt.NDArray[np.float32], k: int
) -> list[tuple[str, float]]:
    scores = vectors @ query
    top = np.argsort(-scores, kind="stable")[:k]
    return [(ids[i], float(scores[i])) for i in top]


def queries(n: int, seed: int) -> npt.NDArray[np.float32]:
    return clustered(n, seed)


def test_the_first_pass_is_in_use(data: Fixture) -> None:
    data.dense(data.vectors[0], 5)
    (cached,) = data.engine.runtime.index._cache.values()  # type: ignore[attr-defined]
    assert cached.codes is not None and cached.codes.rows == ROWS


def test_results_and_scores_equal_exact_search(data: Fixture) -> None:
    for query in queries(30, 2):
        found = data.dense(query, 10)
        want = exact(data.vectors, data.ids, query, 10)
        assert [h.record_id for h in found] == [rid for rid, _ in want]
        assert np.allclose([h.score for h in found], [s for _, s in want], atol=1e-5)


def test_a_stored_vector_finds_its_own_record_first(data: Fixture) -> None:
    for row in (0, 17, 999, ROWS - 1):
        assert data.dense(data.vectors[row], 1)[0].record_id == data.ids[row]


def test_an_unselective_filter_is_applied_inside_the_first_pass(data: Fixture) -> None:
    # Two thirds of the rows pass (n not a multiple of 3): the codes of the others are masked.
    keep = [i for i in range(ROWS) if i % 3]
    for query in queries(10, 3):
        found = data.dense(query, 10, n={"$ne": 0})
        assert data.ids[0] not in [h.record_id for h in found] and len(found) == 10
        want = exact(data.vectors[keep], [data.ids[i] for i in keep], query, 10)
        got = data.dense_where(query, 10, "CAST(json_extract(records.meta, '$.n') AS INTEGER) % 3")
        assert [h.record_id for h in got] == [rid for rid, _ in want]


def test_deleted_updated_and_added_records_are_reflected(data: Fixture) -> None:
    engine = data.engine
    query = data.vectors[42]
    assert data.dense(query, 1)[0].record_id == data.ids[42]
    engine.execute(
        "delete_dataset_record", {"datasetId": data.dataset_id, "recordId": data.ids[42]}
    )
    assert data.ids[42] not in [h.record_id for h in data.dense(query, 10)]
    # A record re-embedded (the index's replace) is found by its new vector.
    moved = clustered(1, 9)[0]
    with engine.store.session() as session:
        engine.runtime.index.replace(
            session, data.dataset_id, data.ids[7], moved, engine.runtime.embedder.model_id
        )
    assert data.dense(moved, 1)[0].record_id == data.ids[7]
    # New rows land in the spare capacity of the vectors and of the codes alike.
    fresh = clustered(50, 10)
    new_ids = data.add(fresh, [{"n": ROWS + i} for i in range(50)])
    (cached,) = engine.runtime.index._cache.values()  # type: ignore[attr-defined]
    for row in (0, 25, 49):
        assert data.dense(fresh[row], 1)[0].record_id == new_ids[row]
    (cached,) = engine.runtime.index._cache.values()  # type: ignore[attr-defined]
    assert cached.codes is not None and cached.codes.rows == len(cached.ids) == ROWS - 1 + 50
    ids = [i for i in data.ids if i != data.ids[42]] + new_ids
    current = np.vstack([np.delete(data.vectors, 42, axis=0), fresh])
    current[ids.index(data.ids[7])] = moved
    for query in queries(10, 4):
        want = exact(current, ids, query, 10)
        assert [h.record_id for h in data.dense(query, 10)] == [rid for rid, _ in want]

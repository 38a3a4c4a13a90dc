"""The search index on PostgreSQL: pgvector's HNSW for dense search, full-text for lexical.

Nothing is cached in the process: every search asks the database, so any number of API processes
on any number of machines see each committed record at once. All SQL that only PostgreSQL has for
retrieval lives here (the schema is migration 0003).

- Dense: `record_vectors.vector` is a pgvector `vector`; each dimension has a partial HNSW index
  on `vector::vector(d)` (cosine). Filters (the dataset, the model, meta conditions) go into the
  same query, and pgvector 0.8's iterative index scan keeps walking the graph until `limit` rows
  pass them, so a filter never empties a result that exact search would fill. Relaxed order lets
  the scan return rows slightly out of order; they are sorted again here.
- Lexical: `records.tsv` (English stemming and stop words) with a GIN index; the query's words
  are ORed, as on SQLite, and ranked by BM25 computed from the tsvectors (see `lexical`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
from sqlalchemy import (
    ColumnElement,
    Float,
    String,
    any_,
    bindparam,
    cast,
    delete,
    func,
    literal_column,
    select,
    text,
    true,
)
from sqlalchemy.orm import Session
from sqlalchemy.types import UserDefinedType

from openbotkit.retrieval.embedders import Vectors
from openbotkit.retrieval.index import Hit, record_keys
from openbotkit.retrieval.lexical import query_terms
from openbotkit.store.tables import Dataset, Record, RecordVector

# Candidates the HNSW graph walk keeps (pgvector's default is 40): the search asks for 50+
# records and recall@10 against exact search at 100k records must stay >= 0.95.
MIN_EF_SEARCH = 100
# Advisory lock key held while a new dimension's HNSW index is created ("obkv" in ASCII).
_INDEX_LOCK_KEY = 0x6F626B76
_ENGLISH: Any = literal_column("'english'")

_INSERT = text(
    "INSERT INTO record_vectors (record_id, record_key, dataset_id, model_id, vector, version) "
    "VALUES (:record_id, :record_key, :dataset_id, :model_id, CAST(:vector AS vector), 0)"
)


def vector_literal(vector: Vectors) -> str:
    """A vector in pgvector's text form (a JSON array); orjson prints each float32 in its
    shortest exact form, ~20x faster than formatting the floats in Python."""
    flat = np.ascontiguousarray(vector, dtype=np.float32).ravel()
    return orjson.dumps(flat, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def hnsw_index_sql(dimensions: int) -> str:
    """The HNSW index for vectors of one dimension (migration 0003 creates the bundled one's)."""
    d = int(dimensions)
    return (
        f"CREATE INDEX IF NOT EXISTS ix_record_vectors_hnsw_{d} ON record_vectors "
        f"USING hnsw ((vector::vector({d})) vector_cosine_ops) WHERE vector_dims(vector) = {d}"
    )


class _Vector(UserDefinedType[str]):
    """pgvector's `vector(d)`, for casts (values travel in its text form)."""

    cache_ok = True

    def __init__(self, dimensions: int) -> None:
        self.dimensions = int(dimensions)

    def get_col_spec(self, **kw: Any) -> str:
        return f"vector({self.dimensions})"


def _distance(dimensions: int) -> Any:
    """Cosine distance to the bound `query`, written as the HNSW index's expression."""
    d = int(dimensions)
    stored: Any = literal_column(f"record_vectors.vector::vector({d})")
    wanted = cast(bindparam("query", type_=String()), _Vector(d))
    return stored.op("<=>", return_type=Float())(wanted).label("distance")


class PgVectorIndex:
    """`SearchIndex` on PostgreSQL + pgvector."""

    def __init__(self) -> None:
        self._indexed_dimensions: set[int] = set()
        self._lock = threading.Lock()

    # -- writes (always inside the caller's transaction) --------------------------------------

    def add(
        self,
        session: Session,
        dataset_id: str,
        record_ids: Sequence[str],
        vectors: Vectors,
        model_id: str,
    ) -> None:
        if not len(record_ids):
            return
        self._ensure_hnsw(session, int(np.asarray(vectors).shape[-1]))
        keys = record_keys(session, record_ids)  # records.key, as the SQLite index keeps it
        rows = [
            {
                "record_id": rid,
                "record_key": keys[rid],
                "dataset_id": dataset_id,
                "model_id": model_id,
                "vector": vector_literal(vec),
            }
            for rid, vec in zip(record_ids, vectors, strict=True)
        ]
        session.connection().execute(_INSERT, rows)

    def replace(
        self, session: Session, dataset_id: str, record_id: str, vector: Vectors, model_id: str
    ) -> None:
        session.execute(delete(RecordVector).where(RecordVector.record_id == record_id))
        self.add(session, dataset_id, [record_id], vector.reshape(1, -1), model_id)

    def touch(self, session: Session, dataset_id: str) -> int:
        """Nothing to invalidate: no process keeps a copy. The version stays as it is (bumping it
        would make concurrent writers of one dataset queue on its row for nothing)."""
        version = session.scalar(select(Dataset.index_version).where(Dataset.id == dataset_id))
        return int(version or 0)

    def _ensure_hnsw(self, session: Session, dimensions: int) -> None:
        """Create the HNSW index for a dimension the first time vectors of it are stored."""
        if dimensions in self._indexed_dimensions:
            return
        with self._lock:
            name = f"ix_record_vectors_hnsw_{int(dimensions)}"
            exists = session.scalar(
                text("SELECT 1 FROM pg_indexes WHERE indexname = :name"), {"name": name}
            )
            if not exists:
                # Two processes creating it at once would collide in the catalog.
                session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _INDEX_LOCK_KEY})
                session.execute(text(hnsw_index_sql(dimensions)))
            self._indexed_dimensions.add(dimensions)

    # -- reads ---------------------------------------------------------------------------------

    def dense(
        self,
        session: Session,
        dataset: Dataset,
        query: Vectors,
        model_id: str,
        limit: int,
        conditions: Sequence[ColumnElement[bool]],
    ) -> list[Hit]:
        q = np.asarray(query, dtype=np.float32).ravel()
        d = len(q)
        # For this transaction only: walk on until `limit` rows pass the filters.
        session.execute(
            text(
                "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), "
                "set_config('hnsw.ef_search', :ef, true)"
            ),
            {"ef": str(max(MIN_EF_SEARCH, limit))},
        )
        distance = _distance(d)
        stmt: Any = select(RecordVector.record_id, distance).where(
            RecordVector.dataset_id == dataset.id,
            RecordVector.model_id == model_id,
            text(f"vector_dims(record_vectors.vector) = {d}"),
        )
        if conditions:
            stmt = stmt.join(Record, Record.id == RecordVector.record_id).where(*conditions)
        stmt = stmt.order_by(literal_column("distance")).limit(limit)
        found = sorted(session.execute(stmt, {"query": vector_literal(q)}), key=lambda r: r[1])
        return [Hit(rid, 1.0 - float(dist)) for rid, dist in found]

    def cosine(
        self,
        session: Session,
        dataset: Dataset,
        query: Vectors,
        model_id: str,
        record_ids: Sequence[str],
    ) -> dict[str, float]:
        if not record_ids:
            return {}
        q = np.asarray(query, dtype=np.float32).ravel()
        stmt = select(RecordVector.record_id, _distance(len(q))).where(
            RecordVector.record_id.in_(bindparam("ids", expanding=True)),
            RecordVector.dataset_id == dataset.id,
            RecordVector.model_id == model_id,
            text(f"vector_dims(record_vectors.vector) = {len(q)}"),
        )
        rows = session.execute(stmt, {"query": vector_literal(q), "ids": list(record_ids)})
        return {rid: 1.0 - float(dist) for rid, dist in rows}

    def lexical(
        self,
        session: Session,
        dataset_id: str,
        query: str,
        conditions: Sequence[ColumnElement[bool]],
        limit: int,
    ) -> list[Hit]:
        """Okapi BM25 (k1 1.2, b 0.75, FTS5's IDF), computed from the stored tsvectors.

        PostgreSQL's own ts_rank has no IDF and ranked SciFact far below FTS5's BM25 (nDCG@10
        0.62 against 0.85). The GIN index finds the records holding any query word; since an
        ORed query matches every record holding a word, counting among the matches gives each
        word's document frequency exactly. A record's length is its count of distinct lexemes.
        """
        terms = query_terms(query)
        if not terms:
            return []
        words = " or ".join(terms)  # \w+ words only, ORed; websearch syntax never fails
        tsquery = func.websearch_to_tsquery(_ENGLISH, bindparam("words", words))
        lexemes = func.tsvector_to_array(func.to_tsvector(_ENGLISH, bindparam("words", words)))
        tsv: Any = literal_column("records.tsv")
        matches = (
            select(Record.id.label("id"), tsv.label("tsv"), func.length(tsv).label("len"))
            .where(Record.dataset_id == dataset_id, tsv.op("@@")(tsquery), *conditions)
            .cte("matches")
            .prefix_with("MATERIALIZED")
        )
        entry = func.unnest(matches.c.tsv).table_valued("lexeme", "positions", "weights")
        hits = (
            select(
                matches.c.id,
                matches.c.len,
                entry.c.lexeme,
                func.cardinality(entry.c.positions).label("tf"),
            )
            .select_from(matches.join(entry, true()))
            .where(entry.c.lexeme == any_(lexemes))
            .cte("hits")
        )
        freq = select(hits.c.lexeme, func.count().label("df")).group_by(hits.c.lexeme).cte("freq")
        total = (
            select(func.count()).select_from(Record).where(Record.dataset_id == dataset_id)
        ).scalar_subquery()
        avg_len = select(func.avg(matches.c.len)).scalar_subquery()
        idf = func.greatest(func.ln((total - freq.c.df + 0.5) / (freq.c.df + 0.5)), 1e-6)
        k1, b = 1.2, 0.75
        tf = hits.c.tf
        score = func.sum(
            idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * hits.c.len / avg_len))
        ).label("score")
        stmt: Any = (
            select(hits.c.id, score)
            .select_from(hits.join(freq, hits.c.lexeme == freq.c.lexeme))
            .group_by(hits.c.id)
            .order_by(score.desc(), hits.c.id)
            .limit(limit)
        )
        return [Hit(rid, float(r)) for rid, r in session.execute(stmt)]

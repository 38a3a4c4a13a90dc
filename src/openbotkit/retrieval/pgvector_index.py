"""The search index on PostgreSQL: pgvector's HNSW for dense search, full-text for lexical.

Nothing is cached in the process: every search asks the database, so any number of API processes
on any number of machines see each committed record at once. All SQL that only PostgreSQL has for
retrieval lives here (the schema is migrations 0003 and 0004).

- Dense: `record_vectors.vector` is a pgvector `vector`; each dimension has a partial HNSW index
  on `vector::vector(d)` (cosine). Filters (the dataset, the model, meta conditions) go into the
  same query, and pgvector 0.8's iterative index scan keeps walking the graph until `limit` rows
  pass them, so a filter never empties a result that exact search would fill. Relaxed order lets
  the scan return rows slightly out of order; they are sorted again here.
- Lexical: `records.tsv` (English stemming and stop words) feeds per-dataset postings and
  BM25 counters kept by triggers (migration 0004); the query's words are ORed, as on SQLite, and
  ranked by BM25 over the dataset's own statistics (see `lexical`).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Float,
    String,
    bindparam,
    cast,
    delete,
    literal_column,
    select,
    text,
)
from sqlalchemy.orm import Session
from sqlalchemy.types import UserDefinedType

from openbotkit.retrieval.embedders import Vectors
from openbotkit.retrieval.index import BM25_B, BM25_K1, Hit, record_keys
from openbotkit.retrieval.lexical import query_terms
from openbotkit.store.tables import Dataset, Record, RecordVector

# Candidates the HNSW graph walk keeps (pgvector's default is 40): the search asks for 50+
# records and recall@10 against exact search at 100k records must stay >= 0.95.
MIN_EF_SEARCH = 100
# Advisory lock key held while a new dimension's HNSW index is created ("obkv" in ASCII).
_INDEX_LOCK_KEY = 0x6F626B76

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

    def __init__(self, ef_search: int = MIN_EF_SEARCH) -> None:
        self._indexed_dimensions: set[int] = set()
        self._lock = threading.Lock()
        # The ef_search each autocommit connection was given (see _walk_until).
        self._walk_set: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
        # The graph walk's candidate list, at least the number of rows asked for.
        self.ef_search = ef_search

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
        self._walk_until(session, max(self.ef_search, limit))
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

    def _walk_until(self, session: Session, ef: int) -> None:
        """Make the graph walk go on until `ef` candidates pass the filters, on this session's
        connection. Set for the connection, not the transaction: a read runs in autocommit,
        where a transaction ends with its statement. An autocommit connection keeps what was
        set, so it is set again only when `ef` changes (a round trip saved per search); inside
        a transaction it is always set, since a rollback would undo it."""
        dbapi = session.connection().connection.dbapi_connection
        if dbapi is None:  # pragma: no cover - a connection the pool has just invalidated
            return
        if dbapi.autocommit and self._walk_set.get(dbapi) == ef:
            return
        session.execute(
            text(
                "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', false), "
                "set_config('hnsw.ef_search', :ef, false)"
            ),
            {"ef": str(ef)},
        )
        if dbapi.autocommit:
            self._walk_set[dbapi] = ef
        else:
            self._walk_set.pop(dbapi, None)

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
        """Okapi BM25 (k1 1.2, b 0.75, FTS5's IDF) over the dataset alone, as on SQLite.

        Everything comes from what migration 0004's triggers keep per dataset: each query
        word's document frequency and the dataset's record count and total length (counters),
        and the records holding the word with their term frequency and length (postings, read
        by an index-only scan). One statement, so one snapshot: the counters always agree with
        the postings. A record's length is its count of distinct lexemes (see migration 0004).
        """
        terms = query_terms(query)
        if not terms:
            return []
        params: dict[str, Any] = {"words": " ".join(terms), "dataset": dataset_id}
        params.update(k1=BM25_K1, b=BM25_B)
        if not conditions:
            params["limit"] = limit
        scored: Any = (
            text(_SCORED if conditions else _SCORED + _BEST_FIRST)
            .bindparams(**params)
            .columns(record_key=BigInteger(), score=Float())
            .cte("scored")
        )
        stmt: Any = (
            select(Record.id, scored.c.score)
            .join(scored, Record.key == scored.c.record_key)
            .where(*conditions)
            .order_by(scored.c.score.desc(), scored.c.record_key)
            .limit(limit)
        )
        return [Hit(rid, float(score)) for rid, score in session.execute(stmt)]


# The dataset's records holding any query word, with their BM25 (FTS5's IDF: a word in half
# the records or more counts 1e-6, not nothing or less). Each word's weights are computed once
# (MATERIALIZED): per posting only float arithmetic remains, a * tf / (tf + c0 + c1 * len),
# which is idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avgdl)) rearranged.
_SCORED = """
    WITH q AS (
        SELECT DISTINCT unnest(tsvector_to_array(to_tsvector('english', :words))) AS lexeme
    ),
    size AS (
        SELECT coalesce(sum(docs), 0)::float8 AS n,
            greatest(coalesce(sum(words), 0)::float8 / greatest(sum(docs), 1), 1e-9) AS avgdl
        FROM lexical_sizes WHERE dataset_id = :dataset
    ),
    freq AS (
        SELECT t.lexeme, sum(t.df)::float8 AS df
        FROM lexical_terms AS t JOIN q ON q.lexeme = t.lexeme
        WHERE t.dataset_id = :dataset
        GROUP BY t.lexeme HAVING sum(t.df) > 0
    ),
    weights AS MATERIALIZED (
        SELECT f.lexeme,
            (CASE WHEN i.idf > 0 THEN i.idf ELSE 1e-6 END) * (:k1 + 1)::float8 AS a,
            (:k1 * (1 - :b))::float8 AS c0,
            (:k1 * :b)::float8 / size.avgdl AS c1
        FROM freq AS f, size, LATERAL (SELECT ln((size.n - f.df + 0.5) / (f.df + 0.5)) AS idf) i
    )
    SELECT p.record_key, sum(w.a * p.tf / (p.tf + w.c0 + w.c1 * p.len)) AS score
    FROM lexical_postings AS p JOIN weights AS w ON p.lexeme = w.lexeme
    WHERE p.dataset_id = :dataset
    GROUP BY p.record_key
"""
# Without meta conditions the best `limit` are known before any record is read.
_BEST_FIRST = " ORDER BY score DESC, p.record_key LIMIT :limit"

"""The search index interface, and its SQLite implementation: vectors as float32 blobs searched
exactly in process memory, and FTS5 (kept in step by triggers, see migration 0002) for BM25. All
SQL that only SQLite has for retrieval lives here, behind `SearchIndex`; PostgreSQL's lives in
`pgvector_index`, and `openbotkit.backends` picks one by the database.

Consistency across processes: every write to a dataset's records bumps `datasets.index_version`
in the same transaction and stamps the vectors it writes with the new version. A process keeps
each dataset's vectors in memory with the version it read; a search that sees a newer version
refreshes incrementally (drops vanished rows, reloads rows stamped after its version), so a record
is searchable by every process as soon as its transaction commits. A transaction that searches a
dataset it has itself written gets a private copy: uncommitted rows never enter the shared cache.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from sqlalchemy import (
    ColumnElement,
    column,
    delete,
    func,
    insert,
    literal_column,
    select,
    table,
    text,
)
from sqlalchemy import update as sql_update
from sqlalchemy.orm import Session

from openbotkit.retrieval.embedders import Vectors
from openbotkit.retrieval.lexical import fts_match
from openbotkit.store.tables import Dataset, Record, RecordVector

_FTS = table("records_fts", column("rowid"))
# Cached vectors kept per process, least recently searched dropped first (1 GiB ≈ 700k vectors
# of 384 dimensions); the most recent dataset is always kept, however big.
CACHE_BYTES = 1 << 30
_TOUCHED = "obk_index_touched"  # session.info key: datasets this transaction has written


@dataclass(frozen=True)
class Hit:
    record_id: str
    score: float


class SearchIndex(Protocol):
    """What search needs from a storage backend."""

    def add(
        self,
        session: Session,
        dataset_id: str,
        record_ids: Sequence[str],
        vectors: Vectors,
        model_id: str,
    ) -> None: ...

    def replace(
        self, session: Session, dataset_id: str, record_id: str, vector: Vectors, model_id: str
    ) -> None: ...

    def touch(self, session: Session, dataset_id: str) -> int:
        """Mark the dataset's index as changed (e.g. records deleted); returns the new version."""
        ...

    def dense(
        self,
        session: Session,
        dataset: Dataset,
        query: Vectors,
        model_id: str,
        limit: int,
        conditions: Sequence[ColumnElement[bool]],
    ) -> list[Hit]:
        """The `limit` records nearest `query` by cosine (best first) among the dataset's
        records that satisfy `conditions` (on `Record`): filtered inside the search."""
        ...

    def lexical(
        self,
        session: Session,
        dataset_id: str,
        query: str,
        conditions: Sequence[ColumnElement[bool]],
        limit: int,
    ) -> list[Hit]: ...

    def cosine(
        self,
        session: Session,
        dataset: Dataset,
        query: Vectors,
        model_id: str,
        record_ids: Sequence[str],
    ) -> dict[str, float]: ...


@dataclass
class _Cached:
    """One dataset's vectors as of `version`; never changed once built, so a search holding it
    keeps a consistent view. `matrix` is the first rows of `buffer`, whose spare rows let the
    next version append without copying (see `_refresh`)."""

    version: int
    rowids: npt.NDArray[np.int64]
    ids: list[str]
    matrix: Vectors
    buffer: Vectors
    _positions: dict[str, int] | None = None

    def positions(self) -> dict[str, int]:
        """Record id -> row of `matrix`, built once per refresh (not per search)."""
        if self._positions is None:
            self._positions = {rid: i for i, rid in enumerate(self.ids)}
        return self._positions


_EMPTY = _Cached(
    -1, np.zeros(0, np.int64), [], np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32)
)


class SQLiteIndex:
    """Exact k-NN over cached float32 matrices, BM25 through FTS5."""

    def __init__(self, cache_bytes: int = CACHE_BYTES) -> None:
        self._cache: OrderedDict[tuple[str, str], _Cached] = OrderedDict()
        self._cache_bytes = cache_bytes
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
        version = self.touch(session, dataset_id)
        if len(record_ids):
            rows = [
                {
                    "record_id": rid,
                    "dataset_id": dataset_id,
                    "model_id": model_id,
                    "vector": np.asarray(vec, dtype=np.float32).tobytes(),
                    "version": version,
                }
                for rid, vec in zip(record_ids, vectors, strict=True)
            ]
            session.execute(insert(RecordVector), rows)

    def replace(
        self, session: Session, dataset_id: str, record_id: str, vector: Vectors, model_id: str
    ) -> None:
        session.execute(delete(RecordVector).where(RecordVector.record_id == record_id))
        self.add(session, dataset_id, [record_id], vector.reshape(1, -1), model_id)

    def touch(self, session: Session, dataset_id: str) -> int:
        session.info.setdefault(_TOUCHED, set()).add(dataset_id)
        version = session.scalar(
            sql_update(Dataset)
            .where(Dataset.id == dataset_id)
            .values(index_version=Dataset.index_version + 1)
            .returning(Dataset.index_version)
        )
        return int(version or 0)

    # -- reads ---------------------------------------------------------------------------------

    def _vectors(self, session: Session, dataset: Dataset, model_id: str) -> _Cached:
        key = (dataset.id, model_id)
        with self._lock:
            cached = self._cache.get(key)
            if dataset.id in session.info.get(_TOUCHED, ()):
                # This transaction wrote the dataset: its view may yet be rolled back.
                return self._refresh(session, dataset, model_id, cached, may_append=False)
            if cached is not None and cached.version == dataset.index_version:
                self._cache.move_to_end(key)
                return cached
            self._cache[key] = cached = self._refresh(session, dataset, model_id, cached)
            self._cache.move_to_end(key)
            self._evict()
            return cached

    def _evict(self) -> None:
        total = sum(c.buffer.nbytes for c in self._cache.values())
        while total > self._cache_bytes and len(self._cache) > 1:
            _, dropped = self._cache.popitem(last=False)
            total -= dropped.buffer.nbytes

    def _refresh(
        self,
        session: Session,
        dataset: Dataset,
        model_id: str,
        old: _Cached | None,
        *,
        may_append: bool = True,
    ) -> _Cached:
        """Bring `old` to the dataset's current version at the cost of what changed.

        Rows stamped after `old.version` are loaded and replace any cached row with the same
        rowid (SQLite reuses the largest freed rowid). A row deleted since then leaves no stamp:
        the row count tells, and only then are all rowids read to find which. Without drops,
        new rows go into `old.buffer`'s spare rows, which no other cached version uses.
        """
        old = old or _EMPTY
        rowid: Any = literal_column("record_vectors.rowid")
        where = (RecordVector.dataset_id == dataset.id, RecordVector.model_id == model_id)
        fresh = session.execute(
            select(rowid, RecordVector.record_id, RecordVector.vector).where(
                *where, RecordVector.version > old.version
            )
        ).all()
        new_rowids = np.array([r[0] for r in fresh], dtype=np.int64)
        new_ids = [r[1] for r in fresh]
        keep = ~np.isin(old.rowids, new_rowids)
        count = session.scalar(select(func.count()).select_from(RecordVector).where(*where))
        if count != int(keep.sum()) + len(fresh):
            current = np.fromiter(session.scalars(select(rowid).where(*where)), dtype=np.int64)
            keep &= np.isin(old.rowids, current)
        kept = int(keep.sum())
        if not fresh and kept == len(old.ids):
            return replace(old, version=dataset.index_version)
        dims = old.buffer.shape[1] if old.buffer.shape[1] else len(fresh[0][2]) // 4
        new = np.frombuffer(b"".join(r[2] for r in fresh), dtype=np.float32).reshape(-1, dims)
        total = kept + len(fresh)
        if may_append and kept == len(old.ids) and total <= len(old.buffer):
            buffer = old.buffer
            buffer[kept:total] = new
            ids = old.ids + new_ids
            rowids = np.concatenate([old.rowids, new_rowids])
        else:
            buffer = np.empty((total + total // 4 + 16, dims), dtype=np.float32)
            if kept:
                buffer[:kept] = old.matrix[keep]
            buffer[kept:total] = new
            ids = [rid for rid, k in zip(old.ids, keep.tolist(), strict=True) if k] + new_ids
            rowids = np.concatenate([old.rowids[keep], new_rowids])
        return _Cached(dataset.index_version, rowids, ids, buffer[:total], buffer)

    def dense(
        self,
        session: Session,
        dataset: Dataset,
        query: Vectors,
        model_id: str,
        limit: int,
        conditions: Sequence[ColumnElement[bool]],
    ) -> list[Hit]:
        allowed: set[str] | None = None
        if conditions:
            allowed = set(
                session.scalars(
                    select(Record.id).where(Record.dataset_id == dataset.id, *conditions)
                )
            )
        cached = self._vectors(session, dataset, model_id)
        if not cached.ids:
            return []
        rows: npt.NDArray[np.int64] | None = None
        if allowed is not None:
            position = cached.positions()
            rows = np.fromiter((position[r] for r in allowed if r in position), dtype=np.int64)
            rows.sort()
        if rows is not None and len(rows) < len(cached.ids) // 4:
            # A selective filter: score only its rows (gathering them costs their size).
            scores = cached.matrix[rows] @ query.reshape(-1)
        else:
            scores = cached.matrix @ query.reshape(-1)
            if rows is not None:
                masked = np.full_like(scores, -np.inf)
                masked[rows] = scores[rows]
                scores = masked
            rows = None
        if not len(scores):
            return []
        n = min(limit, len(scores))
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top], kind="stable")]
        at = top if rows is None else rows[top]
        return [
            Hit(cached.ids[i], float(s))
            for i, s in zip(at.tolist(), scores[top].tolist(), strict=True)
            if np.isfinite(s)
        ]

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
        cached = self._vectors(session, dataset, model_id)
        position = cached.positions()
        rows = [position[r] for r in record_ids if r in position]
        if not rows:
            return {}
        scores = cached.matrix[rows] @ query.reshape(-1)
        return {cached.ids[i]: float(s) for i, s in zip(rows, scores, strict=True)}

    def lexical(
        self,
        session: Session,
        dataset_id: str,
        query: str,
        conditions: Sequence[ColumnElement[bool]],
        limit: int,
    ) -> list[Hit]:
        match = fts_match(query)
        if match is None:
            return []
        # FTS5 returns its matches already sorted by `rank` (bm25) when asked to order by it,
        # so rows stream best first through the dataset and meta conditions and LIMIT stops
        # early: 5 ms for 3,600 matches among 100k records, against 13 ms when SQLite sorts
        # bm25() values itself. The FTS scan must drive the join; `+` keeps SQLite from
        # starting at the records' dataset index instead (30x slower).
        matches = (
            select(_FTS.c.rowid, literal_column("rank").label("rank"))
            .where(text("records_fts MATCH :match"))
            .subquery("matches")
        )
        stmt: Any = (
            select(Record.id, matches.c.rank)
            .select_from(matches.join(Record, literal_column("records.rowid") == matches.c.rowid))
            .where(literal_column("+records.dataset_id") == dataset_id, *conditions)
            .order_by(matches.c.rank)
            .limit(limit)
        )
        # FTS5's rank (bm25) is negative, lower is better; report it positive.
        return [Hit(rid, -float(s)) for rid, s in session.execute(stmt, {"match": match})]

"""The search index interface, and its SQLite implementation: vectors as float32 blobs searched
in process memory, and FTS5 (kept in step by triggers, see migration 0002) for BM25. Up to
BINARY_FROM vectors a dense search is exact; above it, one sign bit per dimension ranks the
dataset by Hamming distance first and the exact cosine ranks the best RESCORE_MIN or more
(recall@10 against exact search is measured by bench/retrieval.py on real embeddings). All
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

import math
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from sqlalchemy import (
    ColumnElement,
    bindparam,
    delete,
    func,
    insert,
    select,
)
from sqlalchemy import update as sql_update
from sqlalchemy.orm import Session

from openbotkit.retrieval.embedders import Vectors
from openbotkit.retrieval.lexical import FTS_TOKENIZE, query_terms
from openbotkit.store.tables import Dataset, Record, RecordVector

# Cached vectors kept per process, least recently searched dropped first (1 GiB ≈ 700k vectors
# of 384 dimensions); the most recent dataset is always kept, however big.
CACHE_BYTES = 1 << 30
# From this many vectors on, a dense search ranks by binary codes first and computes the exact
# cosine only for the best of them (below it the exact scan takes a millisecond or two). It
# rescores at least RESCORE_MIN rows, and RESCORE_PER_RESULT per wanted result: on real
# MiniLM embeddings (bench/retrieval.py at 100k) that keeps recall@10 against exact >= 0.99.
BINARY_FROM = 20_000
RESCORE_MIN = 1000
RESCORE_PER_RESULT = 40
# Spare rows allocated past a dataset's vectors so that new ones append without a copy.
SPARE_FRACTION = 16
_TOUCHED = "obk_index_touched"  # session.info key: datasets this transaction has written
# Where each searched word occurs, per dataset and committed index version, kept per process
# (least recently used dropped first): reading a common word's postings out of FTS5 costs tens
# of milliseconds at 100k records, and common words are the ones every query repeats.
POSTINGS_BYTES = 64 << 20


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
    next version append without copying (see `_refresh`). Large datasets also keep `codes`,
    one sign bit per dimension (see `_BinaryCodes`), in the same append-only way."""

    version: int
    keys: npt.NDArray[np.int64]
    ids: npt.NDArray[np.bytes_]  # record ids, ASCII
    matrix: Vectors
    buffer: Vectors
    codes: _BinaryCodes | None = None
    _order: npt.NDArray[np.int64] | None = None

    def rows_of(self, record_ids: Iterable[str]) -> npt.NDArray[np.int64]:
        """The rows of `matrix` holding these records (those cached), in ascending order.
        Ids are one byte string array, found by binary search over a sort built once per
        version: a fraction of the memory of Python strings and a dict."""
        wanted = np.array([r.encode() for r in record_ids], dtype="S")
        if not len(wanted) or not len(self.ids):
            return np.zeros(0, dtype=np.int64)
        if self._order is None:
            self._order = np.argsort(self.ids, kind="stable").astype(np.int64)
        ordered = self.ids[self._order]
        at = np.minimum(np.searchsorted(ordered, wanted), len(ordered) - 1)
        found = ordered[at] == wanted
        return np.sort(self._order[at[found]])

    def id_at(self, row: int) -> str:
        return bytes(self.ids[row]).decode()

    def nbytes(self) -> int:
        return self.buffer.nbytes + (self.codes.buffer.nbytes if self.codes else 0)


@dataclass(frozen=True)
class _BinaryCodes:
    """Each vector as one bit per dimension (above or below the dataset's mean there), packed
    into 64-bit words stored word-major: `buffer[w, i]` is word `w` of row `i`. 48 bytes for a
    384-dimension vector, an eighth of its float32 size: a Hamming scan of 100k rows reads 5 MB
    instead of the 154 MB of an exact scan, and the exact cosine then ranks its best rows."""

    center: Vectors
    buffer: npt.NDArray[np.uint64]
    rows: int

    @staticmethod
    def pack(vectors: Vectors, center: Vectors) -> npt.NDArray[np.uint64]:
        """(words, rows) codes of `vectors`, built in slices so no full-size temporary exists."""
        dims = vectors.shape[1]
        words = (dims + 63) // 64
        out = np.zeros((len(vectors), words * 8), dtype=np.uint8)
        for start in range(0, len(vectors), 8192):
            bits = vectors[start : start + 8192] > center
            out[start : start + 8192, : (dims + 7) // 8] = np.packbits(bits, axis=1)
        return np.ascontiguousarray(out.view(np.uint64).T)

    @classmethod
    def build(cls, matrix: Vectors, capacity: int) -> _BinaryCodes:
        center = matrix.mean(axis=0, dtype=np.float64).astype(np.float32)
        packed = cls.pack(matrix, center)
        buffer = np.empty((packed.shape[0], capacity), dtype=np.uint64)
        buffer[:, : len(matrix)] = packed
        return cls(center, buffer, len(matrix))

    def appended(self, new: Vectors) -> _BinaryCodes | None:
        """These codes with `new` rows after them, in the spare columns; None if full."""
        total = self.rows + len(new)
        if total > self.buffer.shape[1]:
            return None
        self.buffer[:, self.rows : total] = self.pack(new, self.center)
        return _BinaryCodes(self.center, self.buffer, total)

    def nearest(
        self, query: Vectors, count: int, rows: npt.NDArray[np.int64] | None
    ) -> npt.NDArray[np.int64]:
        """At least `count` rows (of `rows`, if given) with the fewest bits differing from the
        query's: every row at the cut-off distance is kept, so no tie is broken arbitrarily."""
        q = self.pack(query.reshape(1, -1), self.center)[:, 0]
        codes = self.buffer[:, : self.rows]
        distance = np.bitwise_count(codes[0] ^ q[0]).astype(np.uint16)
        for w in range(1, len(q)):
            distance += np.bitwise_count(codes[w] ^ q[w])
        if rows is not None:
            masked = np.full(self.rows, np.iinfo(np.uint16).max, dtype=np.uint16)
            masked[rows] = distance[rows]
            distance = masked
        histogram = np.cumsum(np.bincount(distance, minlength=len(q) * 64 + 1)[: len(q) * 64 + 1])
        cut = int(np.searchsorted(histogram, count))
        return np.flatnonzero(distance <= cut)


_EMPTY = _Cached(
    -1,
    np.zeros(0, np.int64),
    np.zeros(0, "S1"),
    np.zeros((0, 0), np.float32),
    np.zeros((0, 0), np.float32),
)


class SQLiteIndex:
    """k-NN over cached float32 matrices (exact, or exact over a binary first pass), BM25
    through FTS5."""

    def __init__(
        self,
        cache_bytes: int = CACHE_BYTES,
        binary_from: int = BINARY_FROM,
        rescore_min: int = RESCORE_MIN,
    ) -> None:
        self._cache: OrderedDict[tuple[str, str], _Cached] = OrderedDict()
        self._cache_bytes = cache_bytes
        self._binary_from = binary_from
        self._rescore_min = rescore_min
        self._lock = threading.Lock()
        self._sizes: dict[tuple[str, int], tuple[int, int]] = {}
        self._postings: OrderedDict[tuple[str, int, str], npt.NDArray[np.float64]] = OrderedDict()
        self._postings_bytes = 0

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
            keys = record_keys(session, record_ids)
            rows = [
                {
                    "record_id": rid,
                    "record_key": keys[rid],
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
        total = sum(c.nbytes() for c in self._cache.values())
        while total > self._cache_bytes and len(self._cache) > 1:
            _, dropped = self._cache.popitem(last=False)
            total -= dropped.nbytes()

    def cached_bytes(self) -> int:
        """Bytes allocated for the cached vectors and codes (spare rows included)."""
        with self._lock:
            return sum(c.nbytes() for c in self._cache.values())

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
        record key (a re-embedded record). A row deleted since then leaves no stamp: the row
        count tells, and only then are all keys read to find which. Without drops, new rows go
        into `old.buffer`'s spare rows, which no other cached version uses. Rows are identified
        by `records.key`, which VACUUM never renumbers (an implicit rowid it may).
        """
        old = old or _EMPTY
        where = (RecordVector.dataset_id == dataset.id, RecordVector.model_id == model_id)
        newer = (*where, RecordVector.version > old.version)
        count = session.scalar(select(func.count()).select_from(RecordVector).where(*where)) or 0
        dims = (
            old.buffer.shape[1]
            or (
                session.scalar(select(func.length(RecordVector.vector)).where(*where).limit(1)) or 0
            )
            // 4
        )
        stmt = select(RecordVector.record_key, RecordVector.record_id, RecordVector.vector)
        rows = session.connection().execute(stmt.where(*newer))
        if len(old.ids):  # a refresh: what changed is usually a few rows
            listed = rows.all()
            fresh = len(listed)
            if not fresh and count == len(old.ids):
                return replace(old, version=dataset.index_version)
            slices: Iterable[Sequence[Any]] = (listed[i : i + 4096] for i in range(0, fresh, 4096))
        else:  # a first load: every row is new, and they stream in
            fresh = count
            if not fresh:
                return replace(old, version=dataset.index_version)
            slices = rows.partitions(4096)
        spare = fresh + fresh // SPARE_FRACTION + 16
        # A first load reads straight into its final buffer; either way the rows are copied a
        # slice at a time, so no second copy of the whole dataset (as bytes) is ever held.
        first = not len(old.ids) and may_append
        into = np.empty((spare if first else fresh, dims), dtype=np.float32)
        new_keys = np.empty(fresh, dtype=np.int64)
        new_ids: list[str] = []
        for part in slices:
            at, n = len(new_ids), min(len(part), fresh - len(new_ids))
            part = part[:n]  # (a count and a read see one snapshot: this never cuts)
            into[at : at + n] = np.frombuffer(b"".join(r[2] for r in part), np.float32).reshape(
                n, dims
            )
            new_keys[at : at + n] = [r[0] for r in part]
            new_ids.extend(r[1] for r in part)
        new_keys = new_keys[: len(new_ids)]
        new = into[: len(new_ids)]
        keep = ~np.isin(old.keys, new_keys)
        if count != int(keep.sum()) + len(new_ids):
            current = np.fromiter(
                session.scalars(select(RecordVector.record_key).where(*where)), dtype=np.int64
            )
            keep &= np.isin(old.keys, current)
        kept = int(keep.sum())
        total = kept + len(new_ids)
        codes: _BinaryCodes | None = None
        added = np.array([r.encode() for r in new_ids], dtype="S")
        if first:
            buffer, ids, keys = into, added, new_keys
        elif may_append and kept == len(old.ids) and total <= len(old.buffer):
            buffer = old.buffer
            buffer[kept:total] = new
            ids = np.concatenate([old.ids, added])
            keys = np.concatenate([old.keys, new_keys])
            if old.codes is not None:
                codes = old.codes.appended(new)
        else:
            buffer = np.empty((total + total // SPARE_FRACTION + 16, dims), dtype=np.float32)
            if kept:
                buffer[:kept] = old.matrix[keep]
            buffer[kept:total] = new
            ids = np.concatenate([old.ids[keep], added])
            keys = np.concatenate([old.keys[keep], new_keys])
        if codes is None and total >= self._binary_from:
            codes = _BinaryCodes.build(buffer[:total], len(buffer))
        return _Cached(dataset.index_version, keys, ids, buffer[:total], buffer, codes)

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
        if not len(cached.ids):
            return []
        rows = None if allowed is None else cached.rows_of(allowed)
        wanted = max(self._rescore_min, limit * RESCORE_PER_RESULT)
        selective = rows is not None and len(rows) < len(cached.ids) // 4
        if cached.codes is not None and not selective and wanted < len(cached.ids) // 2:
            # Binary codes propose, the exact cosine ranks what they proposed.
            rows = cached.codes.nearest(query, wanted, rows)
            scores = _dot(cached.matrix, query, rows)
        elif selective:
            # A selective filter: score only its rows (gathering them costs their size).
            assert rows is not None
            scores = _dot(cached.matrix, query, rows)
        else:
            scores = _dot(cached.matrix, query)
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
            Hit(cached.id_at(i), float(s))
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
        rows = cached.rows_of(record_ids)
        if not len(rows):
            return {}
        scores = _dot(cached.matrix, query, rows)
        return {cached.id_at(i): float(s) for i, s in zip(rows.tolist(), scores, strict=True)}

    def lexical(
        self,
        session: Session,
        dataset_id: str,
        query: str,
        conditions: Sequence[ColumnElement[bool]],
        limit: int,
    ) -> list[Hit]:
        """BM25 with the dataset's own term statistics: a dataset's ranking and scores depend
        on its records only, never on what other datasets (or accounts) hold.

        FTS5's bm25() counts documents and term frequencies over the whole table, which spans
        every dataset of every account. Here FTS5 supplies, term by term, where the term occurs
        (its `instance` vocabulary, keyed by records.key); the dataset's record count and
        length come from the records; BM25 is computed as FTS5 would over this dataset alone.
        """
        terms = _index_terms(session, query)
        if not terms:
            return []
        version = self._committed_version(session, dataset_id)
        docs, total_words = self._dataset_size(session, dataset_id, version)
        if not docs:
            return []
        avg_len = max(total_words / docs, 1e-9)
        keys: list[npt.NDArray[np.int64]] = []
        parts: list[npt.NDArray[np.float64]] = []
        for term in terms:
            table = self._term_postings(session, dataset_id, version, term)
            if not len(table):
                continue
            idf = math.log((docs - len(table) + 0.5) / (len(table) + 0.5))
            idf = idf if idf > 0 else 1e-6  # as FTS5 does for a term in most documents
            tf, length = table[:, 1], table[:, 2]
            norm = BM25_K1 * (1 - BM25_B + BM25_B * length / avg_len)
            keys.append(table[:, 0].astype(np.int64))
            parts.append(idf * tf * (BM25_K1 + 1) / (tf + norm))
        if not keys:
            return []
        # Summed per record in term order, as a running sum per record would be.
        unique, inverse = np.unique(np.concatenate(keys), return_inverse=True)
        totals = np.bincount(inverse, weights=np.concatenate(parts))
        order = np.lexsort((unique, -totals))  # best first, ties by key
        ranked_keys, ranked_scores = unique[order], totals[order]
        hits: list[Hit] = []
        if not conditions:
            # Every record passes: the best `limit` keys' ids, read on the driver's cursor.
            best = ranked_keys[:limit].tolist()
            raw: Any = session.connection().connection.driver_connection
            marks = ",".join("?" * len(best))
            ids = dict(raw.execute(f"SELECT key, id FROM records WHERE key IN ({marks})", best))
            scores = ranked_scores[:limit].tolist()
            return [Hit(str(ids[k]), s) for k, s in zip(best, scores, strict=True) if k in ids]
        # Best first through the meta conditions, a batch at a time, until `limit` pass.
        batch = max(limit * 4, 64)
        for start in range(0, len(ranked_keys), batch):
            chunk = list(
                zip(
                    ranked_keys[start : start + batch].tolist(),
                    ranked_scores[start : start + batch].tolist(),
                    strict=True,
                )
            )
            found = session.execute(
                select(Record.key, Record.id).where(
                    Record.key.in_(bindparam("keys", expanding=True)), *conditions
                ),
                {"keys": [k for k, _ in chunk]},  # bound as a list: no per-key SQL coercion
            ).all()
            passed = {int(k): str(rid) for k, rid in found}
            hits.extend(Hit(passed[k], s) for k, s in chunk if k in passed)
            if len(hits) >= limit:
                break
        return hits[:limit]

    def _committed_version(self, session: Session, dataset_id: str) -> int | None:
        """The dataset's index version as committed, or None when this transaction has
        written the dataset (its uncommitted view never enters or reads a shared cache)."""
        if dataset_id in session.info.get(_TOUCHED, ()):
            return None
        version = session.scalar(select(Dataset.index_version).where(Dataset.id == dataset_id))
        return int(version or 0)

    def _term_postings(
        self, session: Session, dataset_id: str, version: int | None, term: str
    ) -> npt.NDArray[np.float64]:
        """Rows (record key, term frequency, record length) of one stemmed term in the
        dataset, cached per committed index version."""
        key = (dataset_id, version or 0, term)
        if version is not None:
            with self._lock:
                found = self._postings.get(key)
                if found is not None:
                    self._postings.move_to_end(key)
                    return found
        # The driver's own cursor, in this transaction: plain tuples, straight into numpy.
        raw: Any = session.connection().connection.driver_connection
        rows = raw.execute(_TERM_IN_DATASET, (term, dataset_id)).fetchall()
        table = np.array(rows, dtype=np.float64).reshape(-1, 3)
        if version is not None:
            with self._lock:
                if key not in self._postings:
                    self._postings[key] = table
                    self._postings_bytes += table.nbytes
                while self._postings_bytes > POSTINGS_BYTES and len(self._postings) > 1:
                    self._postings_bytes -= self._postings.popitem(last=False)[1].nbytes
        return table

    def _dataset_size(
        self, session: Session, dataset_id: str, version: int | None
    ) -> tuple[int, int]:
        """(records, words) of a dataset, cached per committed index version."""
        key = (dataset_id, version or 0)
        if version is not None:
            with self._lock:
                found = self._sizes.get(key)
            if found is not None:
                return found
        row = session.execute(
            select(func.count(), func.coalesce(func.sum(Record.tokens), 0)).where(
                Record.dataset_id == dataset_id
            )
        ).one()
        size = (int(row[0]), int(row[1]))
        if version is not None:
            with self._lock:
                self._sizes[key] = size
                while len(self._sizes) > 4096:
                    self._sizes.pop(next(iter(self._sizes)))
        return size


# Where one (stemmed) term occurs in one dataset: record key, term frequency, length.
_TERM_IN_DATASET = """SELECT v.doc, count(*), coalesce(r.tokens, 0) FROM records_fts_instance AS v
    JOIN records AS r ON r.key = v.doc
    WHERE v.term = ? AND r.dataset_id = ?
    GROUP BY v.doc"""
BM25_K1, BM25_B = 1.2, 0.75  # FTS5's bm25() defaults


# The stemmed terms of recently searched word lists, per process: stemming a query through
# the scratch table takes five statements (0.7 ms of a 10 ms search), and its answer depends
# on the words alone.
_STEMMED: OrderedDict[tuple[str, ...], list[str]] = OrderedDict()
_STEMMED_MAX = 4096
_stemmed_lock = threading.Lock()


def _index_terms(session: Session, query: str) -> list[str]:
    """The query's words as the full-text index stores them (tokenized and stemmed by the
    same FTS5 tokenizer, through a per-connection scratch table that keeps no rows)."""
    words = tuple(query_terms(query))
    if not words:
        return []
    with _stemmed_lock:
        known = _STEMMED.get(words)
        if known is not None:
            _STEMMED.move_to_end(words)
            return list(known)
    terms = _stem(session, words)
    with _stemmed_lock:
        _STEMMED[words] = terms
        while len(_STEMMED) > _STEMMED_MAX:
            _STEMMED.popitem(last=False)
    return list(terms)


def _stem(session: Session, words: Sequence[str]) -> list[str]:
    conn = session.connection()
    conn.exec_driver_sql(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.obk_query_terms USING fts5("
        f"text, tokenize='{FTS_TOKENIZE}')"
    )
    conn.exec_driver_sql(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.obk_query_vocab"
        " USING fts5vocab(temp, obk_query_terms, 'row')"
    )
    conn.exec_driver_sql("INSERT INTO temp.obk_query_terms(text) VALUES (?)", (" ".join(words),))
    try:
        return [str(r[0]) for r in conn.exec_driver_sql("SELECT term FROM temp.obk_query_vocab")]
    finally:
        conn.exec_driver_sql("DELETE FROM temp.obk_query_terms")


# Rows per matrix-vector product. OpenBLAS splits larger products across threads, which on a
# busy 2-core machine waits for a core: 4,000 rows took 27 ms instead of 0.5 ms under load.
_DOT_ROWS = 1024


def _dot(
    matrix: Vectors, query: Vectors, rows: npt.NDArray[np.int64] | None = None
) -> npt.NDArray[np.float32]:
    """matrix[rows] @ query (all rows if None), a slice at a time on this thread."""
    q = query.reshape(-1)
    n = len(matrix) if rows is None else len(rows)
    out = np.empty(n, dtype=np.float32)
    for start in range(0, n, _DOT_ROWS):
        part = slice(start, start + _DOT_ROWS)
        block = matrix[part] if rows is None else matrix[rows[part]]
        np.dot(block, q, out=out[part])
    return out


def record_keys(session: Session, record_ids: Sequence[str]) -> dict[str, int]:
    """records.id -> records.key, read in batches that stay under SQLite's variable limit."""
    keys: dict[str, int] = {}
    ids = list(record_ids)
    for start in range(0, len(ids), 900):
        found = session.execute(
            select(Record.id, Record.key).where(Record.id.in_(ids[start : start + 900]))
        ).all()
        keys.update({str(rid): int(key) for rid, key in found})
    return keys

"""Searching a dataset: dense and lexical retrieval fused by a weighted score (the measurement
behind it is in retrieval/fusion.py), then the dataset's limits (searchMaxRecords, searchMinScore,
searchMaxTokens) applied."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select

from openbotkit.errors import InvalidInput, Problem
from openbotkit.retrieval import filters
from openbotkit.retrieval.embedders import Embedder, Vectors
from openbotkit.retrieval.fusion import fuse_weighted
from openbotkit.services.context import Ctx
from openbotkit.store.tables import Dataset, Record

Mode = Literal["hybrid", "dense", "lexical"]
DEFAULT_MAX_RECORDS = 3
# Each retriever proposes this many candidates per wanted record before fusion.
CANDIDATES_PER_RECORD = 10
MIN_CANDIDATES = 50

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _embed_in_background(embedder: Embedder, query: str) -> Future[Vectors]:
    """Embed the query on a worker thread while this one runs SQL: the model and SQLite both
    release the GIL, so in hybrid mode the full-text search costs (almost) no extra time."""
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="obk-embed")
    return _pool.submit(embedder.embed, [query])


@dataclass(frozen=True)
class ScoredRecord:
    id: str
    text: str
    source: str | None
    meta: dict[str, Any] | None
    score: float


def _lexical_score(bm25: float) -> float:
    # BM25 is unbounded; saturate it into 0..1 because the API promises that range.
    return bm25 / (bm25 + 5.0) if bm25 > 0 else 0.0


def search_records(
    ctx: Ctx,
    dataset: Dataset,
    query: str,
    *,
    filter: dict[str, Any] | None = None,
    mode: str = "hybrid",
    max_records: int | None = None,
) -> list[ScoredRecord]:
    """The dataset's records best matching `query`, best first.

    `score` is the cosine similarity of query and record (0..1) in hybrid and dense mode, the
    ChatBotKit meaning that `searchMinScore` is set against; in lexical mode, a saturated BM25.
    Hybrid mode orders by the fused score, so a record that also matches the query's words can
    come before one with a slightly higher cosine. The caller has found `dataset` (and so
    checked that it is the account's): it is not read again.
    """
    if mode not in ("hybrid", "dense", "lexical"):
        raise InvalidInput(
            f"mode {mode!r} is not one of hybrid, dense, lexical",
            details=[Problem("/mode", "enum", "hybrid | dense | lexical")],
        )
    k = max_records or dataset.search_max_records or DEFAULT_MAX_RECORDS
    min_score = dataset.search_min_score or 0.0
    conds = filters.conditions(filter)
    index = ctx.runtime.index
    embedder = ctx.runtime.embedder
    n = max(MIN_CANDIDATES, k * CANDIDATES_PER_RECORD)

    cosine: dict[str, float] = {}
    bm25: dict[str, float] = {}
    query_vec = None
    # Only hybrid mode has other work to overlap with the embedding; dense mode embeds here
    # (a hand-off to another thread and back costs more than it saves).
    embedding = _embed_in_background(embedder, query) if mode == "hybrid" else None
    if mode != "dense":
        hits = index.lexical(ctx.session, dataset.id, query, conds, n)
        bm25 = {h.record_id: h.score for h in hits}
    if mode != "lexical":
        query_vec = embedding.result()[0] if embedding else embedder.embed([query])[0]
        hits = index.dense(ctx.session, dataset, query_vec, embedder.model_id, n, conds)
        cosine = {h.record_id: h.score for h in hits}

    if mode == "hybrid":
        assert query_vec is not None
        # Records only the keywords found get their exact cosine, so fusion compares like with
        # like and their reported score means what it means in dense mode.
        lexical_only = [rid for rid in bm25 if rid not in cosine]
        cosine.update(
            index.cosine(ctx.session, dataset, query_vec, embedder.model_id, lexical_only)
        )
        ordered = [rid for rid, _ in fuse_weighted(cosine, bm25)]
        scored = [(rid, max(0.0, min(1.0, cosine.get(rid, 0.0)))) for rid in ordered]
    elif mode == "dense":
        scored = [(rid, max(0.0, min(1.0, s))) for rid, s in cosine.items()]
    else:
        scored = [(rid, _lexical_score(s)) for rid, s in bm25.items()]
    chosen = [(rid, s) for rid, s in scored if s >= min_score][:k]
    return _within_budget(ctx, chosen, dataset.search_max_tokens)


def _within_budget(
    ctx: Ctx, chosen: list[tuple[str, float]], max_tokens: int | None
) -> list[ScoredRecord]:
    """Load the chosen records; with a token budget, stop before the first that would pass it."""
    if not chosen:
        return []
    rows = {
        r.id: r
        for r in ctx.session.scalars(select(Record).where(Record.id.in_([c[0] for c in chosen])))
    }
    out: list[ScoredRecord] = []
    used = 0
    embedder = ctx.runtime.embedder if max_tokens else None
    for rid, score in chosen:
        row = rows.get(rid)
        if row is None:
            continue
        if embedder is not None and max_tokens:
            used += embedder.count_tokens(row.text)
            if used > max_tokens and out:
                break
        out.append(ScoredRecord(row.id, row.text, row.source, row.meta, round(score, 6)))
    return out

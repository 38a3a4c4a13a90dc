"""Evaluating a dataset's search: run labelled queries through the real search path and measure
how high the records known to be relevant come (nDCG, recall and MRR at k, per mode).

The rankings are those `search_dataset` returns (`search_records`, with the dataset's settings:
`searchMinScore` and `searchMaxTokens` apply, the depth is `k`), so a figure measured here is the
quality users get, and a change of embedder, chunking or settings can be checked before it ships.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from openbotkit.errors import InvalidInput, Problem
from openbotkit.retrieval import evaluation, filters
from openbotkit.services import datasets
from openbotkit.services.context import Ctx
from openbotkit.services.search import Mode, search_records
from openbotkit.store.tables import Record

# A request runs 3 searches per query (about 10 ms each here): 1,000 queries stay well under a
# minute; bigger sets go in several requests (`obk datasets eval` does that by itself).
MAX_QUERIES = 1000
MAX_K = 100
ALL_MODES: tuple[Mode, ...] = ("hybrid", "dense", "lexical")

# A relevant item: a record id, or {"meta": {...}} matching every record whose meta has those
# values (a document split into several records is found at the rank of its first record).
Relevant = str | dict[str, Any]


@dataclass(frozen=True)
class LabelledQuery:
    query: str
    relevant: Sequence[Relevant]


@dataclass(frozen=True)
class QueryRanks:
    query: str
    ranks: list[int | None]


@dataclass(frozen=True)
class ModeFigures:
    ndcg: float
    recall: float
    mrr: float
    queries: list[QueryRanks]


def _target_key(item: Relevant) -> str:
    return item if isinstance(item, str) else json.dumps(item, sort_keys=True)


def _resolve(
    ctx: Ctx, dataset_id: str, queries: Sequence[LabelledQuery]
) -> dict[str, frozenset[str]]:
    """The record ids each distinct relevant item stands for; an item matching no record of the
    dataset is an error (it would silently lower every figure)."""
    matched: dict[str, frozenset[str]] = {}
    problems: list[Problem] = []
    ids = {item for q in queries for item in q.relevant if isinstance(item, str)}
    existing = set(
        ctx.session.scalars(
            select(Record.id).where(Record.dataset_id == dataset_id, Record.id.in_(ids))
        )
    )
    for i, labelled in enumerate(queries):
        for j, item in enumerate(labelled.relevant):
            key = _target_key(item)
            if key in matched:
                continue
            pointer = f"/queries/{i}/relevant/{j}"
            if isinstance(item, str):
                found = frozenset([item]) if item in existing else frozenset()
            else:
                try:
                    conds = filters.conditions(item["meta"])
                except InvalidInput as exc:
                    rule = exc.details[0].message if exc.details else exc.message
                    problems.append(Problem(f"{pointer}/meta", "filter", rule))
                    continue
                found = frozenset(
                    ctx.session.scalars(
                        select(Record.id).where(Record.dataset_id == dataset_id, *conds)
                    )
                )
            if not found:
                problems.append(Problem(pointer, "exists", "matches no record of the dataset"))
            matched[key] = found
    if problems:
        shown = "; ".join(f"{p.pointer}: {p.message}" for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise InvalidInput(f"relevant items not found: {shown}{more}", details=problems)
    return matched


def _ranks(ranking: Sequence[str], targets: Sequence[frozenset[str]]) -> list[int | None]:
    """Each target's rank: the first position holding one of its records that no earlier
    target took, so one position never counts twice (nDCG stays within 0..1)."""
    ranks: list[int | None] = [None] * len(targets)
    for position, record_id in enumerate(ranking, 1):
        for t, records in enumerate(targets):
            if ranks[t] is None and record_id in records:
                ranks[t] = position
                break
    return ranks


def evaluate(
    ctx: Ctx,
    dataset_ref: str,
    queries: Sequence[LabelledQuery],
    *,
    k: int = 10,
    modes: Sequence[Mode] = ALL_MODES,
) -> tuple[str, dict[str, ModeFigures]]:
    """The dataset's id and, per mode, the mean nDCG@k, recall@k and MRR@k over `queries`, with
    the rank of each relevant item per query."""
    if len(queries) > MAX_QUERIES:
        raise InvalidInput(
            f"at most {MAX_QUERIES} queries per evaluation (got {len(queries)}); split the set",
            details=[Problem("/queries", "max_items", f"at most {MAX_QUERIES}")],
        )
    dataset = datasets.get(ctx, dataset_ref)
    matched = _resolve(ctx, dataset.id, queries)
    result: dict[str, ModeFigures] = {}
    for mode in dict.fromkeys(modes):
        per_query: list[QueryRanks] = []
        for labelled in queries:
            found = search_records(ctx, dataset, labelled.query, mode=mode, max_records=k)
            targets = [matched[_target_key(item)] for item in labelled.relevant]
            per_query.append(QueryRanks(labelled.query, _ranks([r.id for r in found], targets)))

        def mean(metric: Any, per: list[QueryRanks] = per_query) -> float:
            return round(statistics.fmean(metric(q.ranks, k) for q in per), 6)

        result[mode] = ModeFigures(
            ndcg=mean(evaluation.ndcg),
            recall=mean(evaluation.recall),
            mrr=mean(evaluation.reciprocal_rank),
            queries=per_query,
        )
    return dataset.id, result

"""Retrieval quality figures from the ranks at which relevant items were found, and readers for
the BEIR file layout (`corpus.jsonl`, `queries.jsonl`, `qrels/*.tsv`) that public retrieval
benchmarks use.

One implementation for `evaluate_dataset` and `bench/retrieval.py`, so the action and the
benchmark cannot disagree about what nDCG means. Ranks are 1-based; None means "not in the top
k". Each rank must be a distinct position of the ranking (a position credits one item).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

from openbotkit.errors import InvalidInput, Problem

Rank = int | None


def _found(ranks: Sequence[Rank], k: int) -> list[tuple[int, int]]:
    return [(i, r) for i, r in enumerate(ranks) if r is not None and r <= k]


def ndcg(ranks: Sequence[Rank], k: int, gains: Sequence[float] | None = None) -> float:
    """Normalised discounted cumulative gain at k: 1 when the relevant items fill the top
    positions in order of gain; `gains` default to 1 (binary relevance)."""
    weights = list(gains) if gains is not None else [1.0] * len(ranks)
    dcg = sum(weights[i] / math.log2(r + 1) for i, r in _found(ranks, k))
    ideal = sorted(weights, reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall(ranks: Sequence[Rank], k: int) -> float:
    """The share of relevant items found in the top k."""
    return len(_found(ranks, k)) / len(ranks) if ranks else 0.0


def reciprocal_rank(ranks: Sequence[Rank], k: int) -> float:
    """1 / the rank of the first relevant item found in the top k, 0 if none is."""
    found = [r for _, r in _found(ranks, k)]
    return 1.0 / min(found) if found else 0.0


def ranks_of(ranking: Sequence[str], relevant: Sequence[str]) -> list[Rank]:
    """The 1-based rank of each relevant id in `ranking` (None when absent)."""
    position: dict[str, int] = {}
    for i, item in enumerate(ranking):
        position.setdefault(item, i + 1)
    return [position.get(item) for item in relevant]


# -- the BEIR layout ----------------------------------------------------------------------


def _bad_file(path: Path, line: int, message: str) -> InvalidInput:
    return InvalidInput(
        f"{path}:{line}: {message}", details=[Problem(str(path), "beir", f"line {line}: {message}")]
    )


def _jsonl(path: Path) -> list[tuple[int, dict[str, object]]]:
    out = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InvalidInput(
            f"cannot read {path}: {exc.strerror}", details=[Problem(str(path), "readable", "")]
        ) from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _bad_file(path, n, f"not JSON: {exc.msg}") from None
        if not isinstance(item, dict) or not isinstance(item.get("_id"), str):
            raise _bad_file(path, n, 'expected an object with a string "_id"')
        out.append((n, item))
    return out


def read_queries(path: Path) -> dict[str, str]:
    """`queries.jsonl`: query id -> text."""
    out = {}
    for n, item in _jsonl(path):
        text = item.get("text")
        if not isinstance(text, str) or not text.strip():
            raise _bad_file(path, n, 'expected a non-blank string "text"')
        out[str(item["_id"])] = text
    return out


def read_corpus(path: Path) -> dict[str, str]:
    """`corpus.jsonl`: document id -> title and text, joined by a space."""
    out = {}
    for n, item in _jsonl(path):
        title, text = item.get("title") or "", item.get("text")
        if not isinstance(text, str) or not isinstance(title, str):
            raise _bad_file(path, n, 'expected string "title" and "text"')
        out[str(item["_id"])] = f"{title} {text}".strip()
    return out


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """`qrels/*.tsv` (query-id, corpus-id, score; a header line is allowed): the judged
    documents of each query with their grade. Grade 0 (judged not relevant) is kept here;
    callers that want the relevant ones filter on grade > 0."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InvalidInput(
            f"cannot read {path}: {exc.strerror}", details=[Problem(str(path), "readable", "")]
        ) from None
    out: dict[str, dict[str, int]] = {}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = line.rstrip("\n").split("\t")
        if n == 1 and not parts[-1].strip().lstrip("-").isdigit():
            continue  # the header
        if len(parts) < 3 or not parts[-1].strip().lstrip("-").isdigit():
            raise _bad_file(path, n, "expected query-id <TAB> corpus-id <TAB> integer score")
        # BEIR has three columns; TREC's four (query-id Q0 corpus-id score) read the same.
        out.setdefault(parts[0], {})[parts[-2]] = int(parts[-1])
    return out

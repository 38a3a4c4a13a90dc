"""Rank fusion: reciprocal rank fusion (RRF), the reference method for dense + lexical."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

RRF_K = 60
ItemT = TypeVar("ItemT", bound=Hashable)


def fuse_rrf(rankings: Sequence[Sequence[ItemT]], k: int = RRF_K) -> list[tuple[ItemT, float]]:
    """Items found near the top by several rankers come first: the sum of 1 / (k + rank).

    Ties keep the order of first appearance, so the result is deterministic.
    """
    scores: dict[ItemT, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda kv: -kv[1])

from __future__ import annotations

from openbotkit.retrieval.fusion import fuse_rrf


def test_rrf_ranks_items_found_by_both_retrievers_first() -> None:
    fused = [item for item, _ in fuse_rrf([["a", "b", "c"], ["c", "d", "a"]])]
    assert fused[:2] == ["a", "c"]
    assert set(fused) == {"a", "b", "c", "d"}


def test_rrf_scores_decrease_and_single_lists_keep_order() -> None:
    fused = fuse_rrf([["x", "y", "z"]])
    assert [i for i, _ in fused] == ["x", "y", "z"]
    assert fused[0][1] > fused[1][1] > fused[2][1]

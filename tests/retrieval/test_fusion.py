from __future__ import annotations

import pytest

from openbotkit.retrieval.fusion import fuse_rrf, fuse_weighted


def test_rrf_ranks_items_found_by_both_retrievers_first() -> None:
    fused = [item for item, _ in fuse_rrf([["a", "b", "c"], ["c", "d", "a"]])]
    assert fused[:2] == ["a", "c"]
    assert set(fused) == {"a", "b", "c", "d"}


def test_rrf_scores_decrease_and_single_lists_keep_order() -> None:
    fused = fuse_rrf([["x", "y", "z"]])
    assert [i for i, _ in fused] == ["x", "y", "z"]
    assert fused[0][1] > fused[1][1] > fused[2][1]


def test_weighted_fusion_puts_an_item_strong_in_both_first() -> None:
    dense = {"a": 0.80, "b": 0.78, "c": 0.30}
    lexical = {"c": 12.0, "b": 10.0}
    fused = fuse_weighted(dense, lexical)
    assert [item for item, _ in fused] == ["b", "c", "a"]
    assert fused[0][1] == pytest.approx(0.5 * 0.78 / 0.80 + 0.5 * 10 / 12)


def test_weighted_fusion_keeps_score_gaps_that_rank_fusion_loses() -> None:
    # Dense sees a near tie, lexical a clear winner: only score fusion lets the winner through.
    dense = {"x": 0.61, "y": 0.60}
    lexical = {"y": 9.0, "x": 1.0}
    assert fuse_weighted(dense, lexical)[0][0] == "y"
    assert fuse_rrf([["x", "y"], ["y", "x"]])[0][0] == "x"  # a tie, broken by first appearance


def test_weighted_fusion_scores_lie_in_0_1_and_handle_empty_or_negative_input() -> None:
    fused = fuse_weighted({"a": -0.2, "b": 0.4}, {})
    assert [i for i, _ in fused] == ["b", "a"]
    assert all(0.0 <= s <= 1.0 for _, s in fused)
    assert fuse_weighted({}, {"z": 3.0}) == [("z", 0.5)]
    assert fuse_weighted({}, {}) == []

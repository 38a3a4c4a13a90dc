"""Retrieval metrics against hand-computed values, and the BEIR readers."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from openbotkit.errors import InvalidInput
from openbotkit.retrieval.evaluation import (
    ndcg,
    ranks_of,
    read_corpus,
    read_qrels,
    read_queries,
    recall,
    reciprocal_rank,
)


def test_ndcg_by_hand() -> None:
    assert ndcg([1], 10) == 1.0
    assert ndcg([2], 10) == pytest.approx(1 / math.log2(3))
    # Two relevant, one at rank 1, one missing: 1 / (1 + 1/log2(3)).
    assert ndcg([1, None], 10) == pytest.approx(1 / (1 + 1 / math.log2(3)))
    # Ranks 2 and 3 of two: (1/log2(3) + 1/log2(4)) / (1 + 1/log2(3)).
    assert ndcg([3, 2], 10) == pytest.approx((1 / math.log2(3) + 0.5) / (1 + 1 / math.log2(3)))
    assert ndcg([11], 10) == 0.0 and ndcg([], 10) == 0.0
    # Graded: the grade-2 item at rank 2, grade-1 at rank 1.
    expected = (1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3))
    assert ndcg([2, 1], 10, [2, 1]) == pytest.approx(expected)


def test_ideal_is_cut_at_k() -> None:
    # Three relevant items, k = 2: a perfect top 2 scores 1.
    assert ndcg([1, 2, None], 2) == 1.0


def test_recall_and_reciprocal_rank() -> None:
    assert recall([1, None, 4], 3) == pytest.approx(1 / 3)
    assert recall([1, None, 3], 3) == pytest.approx(2 / 3)
    assert reciprocal_rank([None, 4, 2], 10) == 0.5
    assert reciprocal_rank([None, 4], 3) == 0.0


def test_ranks_of_counts_first_occurrence() -> None:
    assert ranks_of(["a", "b", "a", "c"], ["c", "a", "z"]) == [4, 1, None]


def test_beir_readers(tmp_path: Path) -> None:
    (tmp_path / "corpus.jsonl").write_text(
        '{"_id": "d1", "title": "T", "text": "body"}\n\n{"_id": "d2", "text": "only"}\n'
    )
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "what?"}\n')
    (tmp_path / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t0\n")
    assert read_corpus(tmp_path / "corpus.jsonl") == {"d1": "T body", "d2": "only"}
    assert read_queries(tmp_path / "queries.jsonl") == {"q1": "what?"}
    assert read_qrels(tmp_path / "qrels.tsv") == {"q1": {"d1": 1, "d2": 0}}


def test_beir_readers_name_the_bad_line(tmp_path: Path) -> None:
    bad = tmp_path / "queries.jsonl"
    bad.write_text('{"_id": "q1", "text": "ok"}\n{"text": "no id"}\n')
    with pytest.raises(InvalidInput, match=r"queries.jsonl:2"):
        read_queries(bad)
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("q1\td1\t1\nq1\td2\n")
    with pytest.raises(InvalidInput, match=r"qrels.tsv:2"):
        read_qrels(qrels)
    with pytest.raises(InvalidInput, match="cannot read"):
        read_corpus(tmp_path / "missing.jsonl")

"""evaluate_dataset: figures equal to hand-computed ones, rankings equal to search_dataset's."""

from __future__ import annotations

import math
from typing import Any

import pytest

from openbotkit.errors import InvalidInput, NotFound
from openbotkit.services.evaluation import MAX_QUERIES
from tests.conftest import RunAction

TEXTS = {
    "a": "alpha",
    "b": "bravo",
    "c": "charlie delta",
    "e": "delta echo foxtrot golf",
}
# A document split into two records, identified by meta.
CHUNKS = ["hotel india", "hotel juliet kilo"]


@pytest.fixture
def corpus(run: RunAction) -> dict[str, str]:
    ds = run("create_dataset", {"name": "eval"})["id"]
    ids = {
        k: run("create_dataset_record", {"datasetId": ds, "text": t})["id"]
        for k, t in TEXTS.items()
    }
    for i, text in enumerate(CHUNKS):
        ids[f"f{i}"] = run(
            "create_dataset_record", {"datasetId": ds, "text": text, "meta": {"doc": "f"}}
        )["id"]
    return {"dataset": ds, **ids}


def labelled(c: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {"query": "alpha", "relevant": [c["a"]]},  # the only match: rank 1
        {"query": "bravo", "relevant": [c["a"], c["b"]]},  # a never matches: [None, 1]
        {"query": "charlie delta", "relevant": [c["e"]]},  # c matches both words: e is 2nd
        {"query": "hotel kilo", "relevant": [{"meta": {"doc": "f"}}]},  # f1 first, f0 second
    ]


def test_lexical_figures_equal_hand_computed_ones(run: RunAction, corpus: dict[str, str]) -> None:
    out = run(
        "evaluate_dataset",
        {"datasetId": corpus["dataset"], "queries": labelled(corpus), "modes": ["lexical"]},
    )
    assert out["id"] == corpus["dataset"] and out["k"] == 10 and list(out["modes"]) == ["lexical"]
    lexical = out["modes"]["lexical"]
    assert [q["ranks"] for q in lexical["queries"]] == [[1], [None, 1], [2], [1]]
    assert lexical["queries"][1]["query"] == "bravo"
    # nDCG: 1; 1 / (1 + 1/log2 3) (ideal: both found at ranks 1 and 2); 1/log2 3; 1.
    ndcg = (1 + 1 / (1 + 1 / math.log2(3)) + 1 / math.log2(3) + 1) / 4
    assert lexical["ndcg"] == pytest.approx(ndcg, abs=1e-6)
    assert lexical["recall"] == pytest.approx((1 + 0.5 + 1 + 1) / 4)
    assert lexical["mrr"] == pytest.approx((1 + 1 + 0.5 + 1) / 4)


def test_k_cuts_the_rankings(run: RunAction, corpus: dict[str, str]) -> None:
    out = run(
        "evaluate_dataset",
        {
            "datasetId": corpus["dataset"],
            "queries": labelled(corpus),
            "modes": ["lexical"],
            "k": 1,
        },
    )["modes"]["lexical"]
    assert [q["ranks"] for q in out["queries"]] == [[1], [None, 1], [None], [1]]
    # At k = 1 the ideal ranking holds one item: "bravo" scores a full 1.
    assert out["ndcg"] == pytest.approx(3 / 4)
    assert out["recall"] == pytest.approx((1 + 0.5 + 0 + 1) / 4)
    assert out["mrr"] == pytest.approx(3 / 4)


@pytest.mark.slow
def test_every_mode_ranks_as_search_dataset_does(run: RunAction, corpus: dict[str, str]) -> None:
    run("update_dataset", {"datasetId": corpus["dataset"], "searchMaxRecords": 3})
    queries = labelled(corpus)
    out = run("evaluate_dataset", {"datasetId": corpus["dataset"], "queries": queries, "k": 3})
    assert list(out["modes"]) == ["hybrid", "dense", "lexical"]
    chunks = {corpus["f0"], corpus["f1"]}
    for mode, figures in out["modes"].items():
        for q, got in zip(queries, figures["queries"], strict=True):
            found = run(
                "search_dataset",
                {"datasetId": corpus["dataset"], "search": q["query"], "mode": mode},
            )["records"]
            ranking = [r["id"] for r in found]
            expected = []
            for item in q["relevant"]:
                members = chunks if isinstance(item, dict) else {item}
                expected.append(next((i + 1 for i, r in enumerate(ranking) if r in members), None))
            assert got["ranks"] == expected, (mode, q["query"])


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        ({"queries": [{"query": "x", "relevant": ["no-such-record"]}]}, "/queries/0/relevant/0"),
        (
            {"queries": [{"query": "x", "relevant": [{"meta": {"doc": "z"}}]}]},
            "/queries/0/relevant/0",
        ),
        (
            {"queries": [{"query": "x", "relevant": [{"meta": {"n": {"$gt": "a"}}}]}]},
            "/queries/0/relevant/0/meta",
        ),
        ({"queries": [{"query": "x", "relevant": []}]}, "/queries/0/relevant"),
        ({"queries": [{"query": "  ", "relevant": ["r"]}]}, "/queries/0/query"),
        ({"queries": []}, "/queries"),
        ({"k": 0}, "/k"),
        ({"k": 101}, "/k"),
        ({"modes": ["semantic"]}, "/modes/0"),
        ({"queries": [{"query": "x", "relevant": ["r"]}] * (MAX_QUERIES + 1)}, "/queries"),
    ],
)
def test_bad_input_names_the_field(
    run: RunAction, corpus: dict[str, str], change: dict[str, Any], pointer: str
) -> None:
    data = {"datasetId": corpus["dataset"], "queries": labelled(corpus), **change}
    with pytest.raises(InvalidInput) as err:
        run("evaluate_dataset", data)
    assert err.value.details[0].pointer == pointer


def test_another_accounts_dataset_is_not_found(run_bob: RunAction, corpus: dict[str, str]) -> None:
    with pytest.raises(NotFound):
        run_bob("evaluate_dataset", {"datasetId": corpus["dataset"], "queries": labelled(corpus)})

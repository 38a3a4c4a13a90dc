"""search_dataset through the engine with the real bundled embedder."""

from __future__ import annotations

import sqlite3

import pytest

from openbotkit.engine import Engine
from openbotkit.errors import InvalidInput, NotFound
from openbotkit.retrieval.embedders import Embedder
from openbotkit.settings import Settings
from tests.conftest import RunAction, make_runner

FACTS = [
    (
        "The Zephyr-9 warehouse robot has a maximum payload of 42 kilograms.",
        {"kind": "robot", "n": 1},
    ),
    ("The Zephyr-9 charges in 90 minutes and runs for 8 hours.", {"kind": "robot", "n": 2}),
    ("Our office is open Monday to Friday, 9am to 5pm.", {"kind": "office", "n": 3}),
    ("Paris is the capital of France.", {"kind": "geo", "n": 4}),
    ("Bananas are rich in potassium.", {"n": 5}),
]


@pytest.fixture
def dataset(run: RunAction) -> str:
    ds = run("create_dataset", {"name": "facts"})["id"]
    for text, meta in FACTS:
        run("create_dataset_record", {"datasetId": ds, "text": text, "meta": meta})
    return ds


def texts(result: dict[str, object]) -> list[str]:
    return [r["text"] for r in result["records"]]  # type: ignore[index, union-attr]


@pytest.mark.parametrize("mode", ["hybrid", "dense"])
def test_paraphrase_finds_the_record_first(run: RunAction, dataset: str, mode: str) -> None:
    result = run(
        "search_dataset",
        {"datasetId": dataset, "search": "How heavy a load can the Zephyr-9 lift?", "mode": mode},
    )
    assert result["id"] == dataset
    assert texts(result)[0].startswith("The Zephyr-9 warehouse robot")
    scores = [r["score"] for r in result["records"]]
    assert all(0 <= s <= 1 for s in scores)


def test_lexical_mode_matches_keywords(run: RunAction, dataset: str) -> None:
    result = run("search_dataset", {"datasetId": dataset, "search": "potassium", "mode": "lexical"})
    assert texts(result) == ["Bananas are rich in potassium."]


def test_default_limit_is_three_and_dataset_settings_apply(run: RunAction, dataset: str) -> None:
    assert len(run("search_dataset", {"datasetId": dataset, "search": "robot"})["records"]) == 3
    run("update_dataset", {"datasetId": dataset, "searchMaxRecords": 1})
    assert len(run("search_dataset", {"datasetId": dataset, "search": "robot"})["records"]) == 1
    run("update_dataset", {"datasetId": dataset, "searchMaxRecords": 5, "searchMinScore": 0.5})
    found = run("search_dataset", {"datasetId": dataset, "search": "capital city of France"})
    assert texts(found) == ["Paris is the capital of France."]


def test_token_budget_keeps_the_best_record_only(run: RunAction, dataset: str) -> None:
    run("update_dataset", {"datasetId": dataset, "searchMaxRecords": 5, "searchMaxTokens": 20})
    found = run("search_dataset", {"datasetId": dataset, "search": "Zephyr-9 robot payload"})
    assert len(found["records"]) == 1


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"kind": "robot"}, {1, 2}),
        ({"meta.kind": {"$eq": "office"}}, {3}),
        ({"kind": {"$ne": "robot"}}, {3, 4, 5}),  # $ne also matches records without the key
        ({"n": {"$gt": 3}}, {4, 5}),
        ({"n": {"$gte": 2}, "kind": "robot"}, {2}),
        ({"n": {"$lt": 2}}, {1}),
        ({"n": {"$lte": 1}}, {1}),
    ],
)
def test_filters_apply_before_the_top_k_cut(
    run: RunAction, dataset: str, flt: dict[str, object], expected: set[int]
) -> None:
    run("update_dataset", {"datasetId": dataset, "searchMaxRecords": 5})
    for mode in ("hybrid", "dense", "lexical"):
        # A query that ranks the robots first; the filter must still fill k from the rest.
        found = run(
            "search_dataset",
            {
                "datasetId": dataset,
                "search": "Zephyr-9 robot office Paris bananas",
                "filter": flt,
                "mode": mode,
            },
        )
        got = {r["meta"]["n"] for r in found["records"]}
        assert got <= expected, mode
        if mode != "lexical":
            assert got == expected, mode


@pytest.mark.parametrize(
    "flt", [{"n": {"$gt": "3"}}, {"n": {"$foo": 1}}, {"n": {"$gt": 1, "$lt": 4}}, {"n": [1]}]
)
def test_bad_filters_name_the_key(run: RunAction, dataset: str, flt: dict[str, object]) -> None:
    with pytest.raises(InvalidInput) as err:
        run("search_dataset", {"datasetId": dataset, "search": "x", "filter": flt})
    assert err.value.details[0].pointer == "/filter/n"


def test_index_follows_update_and_delete(run: RunAction, dataset: str) -> None:
    rec = run(
        "create_dataset_record", {"datasetId": dataset, "text": "Quokkas live on Rottnest Island."}
    )["id"]
    assert texts(run("search_dataset", {"datasetId": dataset, "search": "quokka habitat"}))[
        0
    ].startswith("Quokkas")
    run(
        "update_dataset_record",
        {"datasetId": dataset, "recordId": rec, "text": "Wombats dig burrows."},
    )
    lexical = run("search_dataset", {"datasetId": dataset, "search": "quokkas", "mode": "lexical"})
    assert lexical["records"] == []
    assert (
        texts(run("search_dataset", {"datasetId": dataset, "search": "wombat burrows"}))[0]
        == "Wombats dig burrows."
    )
    run("delete_dataset_record", {"datasetId": dataset, "recordId": rec})
    for mode in ("hybrid", "dense", "lexical"):
        found = run(
            "search_dataset", {"datasetId": dataset, "search": "wombat burrows", "mode": mode}
        )
        assert "Wombats dig burrows." not in texts(found)


def test_index_is_consistent_across_engines_and_restarts(
    settings: Settings, local_embedder: Embedder
) -> None:
    first = Engine(settings, embedder=local_embedder)
    second = Engine(settings, embedder=local_embedder)
    ds = first.execute("create_dataset", {})["id"]
    first.execute(
        "create_dataset_record", {"datasetId": ds, "text": "Axolotls regrow their limbs."}
    )
    # `second` is another process's view: it must see the record, then its deletion.
    assert texts(
        second.execute("search_dataset", {"datasetId": ds, "search": "salamander regeneration"})
    ) == ["Axolotls regrow their limbs."]
    rec = second.execute("create_dataset_record", {"datasetId": ds, "text": "Owls hunt at night."})[
        "id"
    ]
    assert "Owls hunt at night." in texts(
        first.execute("search_dataset", {"datasetId": ds, "search": "nocturnal birds"})
    )
    first.execute("delete_dataset_record", {"datasetId": ds, "recordId": rec})
    assert "Owls hunt at night." not in texts(
        second.execute("search_dataset", {"datasetId": ds, "search": "nocturnal birds"})
    )
    first.close(), second.close()
    restarted = Engine(settings, embedder=local_embedder)
    assert texts(
        restarted.execute("search_dataset", {"datasetId": ds, "search": "limb regrowth"})
    ) == ["Axolotls regrow their limbs."]
    restarted.close()


def test_search_is_scoped_to_the_account(run: RunAction, run_bob: RunAction, dataset: str) -> None:
    with pytest.raises(NotFound):
        run_bob("search_dataset", {"datasetId": dataset, "search": "robot"})
    own = run_bob("create_dataset", {})["id"]
    run_bob(
        "create_dataset_record", {"datasetId": own, "text": "Zephyr-9 is bob's robot name too."}
    )
    found = run_bob(
        "search_dataset", {"datasetId": own, "search": "Zephyr-9 payload", "mode": "lexical"}
    )
    assert texts(found) == ["Zephyr-9 is bob's robot name too."]


def test_search_text_is_required(run: RunAction, dataset: str) -> None:
    with pytest.raises(InvalidInput) as err:
        run("search_dataset", {"datasetId": dataset, "search": ""})
    assert err.value.details[0].pointer == "/search"


OTHER_TEXTS = [
    f"The Zephyr-{i} robot manual, chapter {i}: payload, charging and the robot's battery."
    for i in range(40)
] + [f"Kilograms and minutes and hours, note {i}." for i in range(40)]


def _ranking(run: RunAction, dataset: str, query: str, mode: str) -> list[tuple[str, float]]:
    found = run(
        "search_dataset",
        {"datasetId": dataset, "search": query, "mode": mode},
    )["records"]
    return [(r["id"], r["score"]) for r in found]


@pytest.mark.parametrize("mode", ["lexical", "hybrid"])
def test_a_datasets_results_depend_only_on_its_own_records(
    run: RunAction, run_bob: RunAction, dataset: str, engine: Engine, mode: str
) -> None:
    """Identical ids and scores before and after another account, and another dataset of the
    same account, add records full of the query's words (term statistics are per dataset)."""
    queries = ["Zephyr-9 payload kilograms", "robot charging minutes hours", "capital France"]
    before = {q: _ranking(run, dataset, q, mode) for q in queries}
    assert all(before.values())
    theirs = run_bob("create_dataset", {})["id"]
    mine = run("create_dataset", {})["id"]
    for text in OTHER_TEXTS:
        run_bob("create_dataset_record", {"datasetId": theirs, "text": text})
        run("create_dataset_record", {"datasetId": mine, "text": text})
    after = {q: _ranking(run, dataset, q, mode) for q in queries}
    assert after == before
    # A fresh process (no cached statistics) agrees.
    restarted = Engine(engine.settings, embedder=engine.runtime.embedder)
    try:
        again = {q: _ranking(make_runner(restarted, "alice"), dataset, q, mode) for q in queries}
    finally:
        restarted.close()
    assert again == before


def test_search_survives_vacuum(
    run: RunAction, dataset: str, engine: Engine, db_backend: str
) -> None:
    """The full-text index and the vector cache are keyed by records.key, which VACUUM keeps;
    deleting rows first gives VACUUM implicit rowids to renumber."""
    if db_backend != "sqlite":
        pytest.skip("renumbered rowids are SQLite's (PostgreSQL has none)")
    extra = run("create_dataset", {})["id"]
    ids = [run("create_dataset_record", {"datasetId": extra, "text": t})["id"] for t in OTHER_TEXTS]
    for record_id in ids[::2]:
        run("delete_dataset_record", {"datasetId": extra, "recordId": record_id})
    queries = ["Zephyr-9 payload kilograms", "capital France"]
    before = {(q, m): _ranking(run, dataset, q, m) for q in queries for m in ("lexical", "dense")}
    db = sqlite3.connect(engine.settings.home / "openbotkit.sqlite3")
    db.execute("VACUUM")
    db.close()
    after = {(q, m): _ranking(run, dataset, q, m) for q in queries for m in ("lexical", "dense")}
    assert after == before
    # Writes after VACUUM are found (the cache refreshes by key) and the rest unchanged.
    new = run("create_dataset_record", {"datasetId": dataset, "text": "Zephyr-9 payload 42 kg."})
    found = _ranking(run, dataset, "Zephyr-9 payload kilograms", "lexical")
    assert new["id"] in [rid for rid, _ in found]


def test_filter_operators_are_typed_on_every_database(run: RunAction) -> None:
    ds = run("create_dataset", {"name": "typed", "searchMaxRecords": 9})["id"]
    for meta in ({"n": 5}, {"n": "7"}, {"n": 10**20}, {}):
        run("create_dataset_record", {"datasetId": ds, "text": "Cats purr loudly.", "meta": meta})

    def found(flt: dict[str, object]) -> list[object]:
        records = run(
            "search_dataset",
            {"datasetId": ds, "search": "cats", "filter": flt, "mode": "lexical"},
        )["records"]
        return sorted(((r["meta"] or {}).get("n", "-") for r in records), key=str)

    assert found({"n": {"$gt": 4}}) == [10**20, 5]  # the string "7" is not a number
    assert found({"n": {"$lt": 10**30}}) == [10**20, 5]
    assert found({"n": {"$ne": 5}}) == ["-", 10**20, "7"]

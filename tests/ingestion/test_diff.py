"""The chunk-level plan of a re-sync: what is kept, added, removed, and how changes are shown."""

from __future__ import annotations

from openbotkit.ingestion.diff import CHANGED_SHOWN, Change, Existing, Wanted, plan_diff


def old(*texts: str) -> list[Existing]:
    return [Existing(f"r{i}", t, {"chunk": i}) for i, t in enumerate(texts)]


def new(*texts: str) -> list[Wanted]:
    return [Wanted(t, {"chunk": i}) for i, t in enumerate(texts)]


def test_same_chunks_are_all_kept_with_their_records() -> None:
    plan = plan_diff(old("a", "b", "c"), new("a", "b", "c"))
    assert [(rec.id, want.text) for rec, want in plan.keep] == [
        ("r0", "a"),
        ("r1", "b"),
        ("r2", "c"),
    ]
    assert plan.add == [] and plan.remove == [] and plan.changed == []


def test_an_edited_chunk_is_replaced_and_shown_before_and_after() -> None:
    plan = plan_diff(old("a", "b", "c"), new("a", "B!", "c"))
    assert [rec.id for rec, _ in plan.keep] == ["r0", "r2"]
    assert [w.text for w in plan.add] == ["B!"]
    assert [rec.id for rec in plan.remove] == ["r1"]
    assert plan.changed == [Change(1, "b", "B!")]


def test_a_moved_chunk_is_kept_and_its_new_position_travels_in_meta() -> None:
    plan = plan_diff(old("a", "b", "c"), new("c", "a", "b"))
    assert plan.add == [] and plan.remove == [] and plan.changed == []
    kept = {rec.id: want.meta["chunk"] for rec, want in plan.keep}
    assert kept == {"r0": 1, "r1": 2, "r2": 0}


def test_duplicate_texts_match_one_record_each() -> None:
    plan = plan_diff(old("x", "x"), new("x", "x", "x"))
    assert sorted(rec.id for rec, _ in plan.keep) == ["r0", "r1"]
    assert [w.text for w in plan.add] == ["x"]
    assert plan.changed == [Change(2, None, "x")]


def test_insertions_and_removals_are_shown_one_sided() -> None:
    plan = plan_diff(old("a", "gone", "c"), new("a", "c", "new"))
    assert plan.changed == [Change(None, "gone", None), Change(2, None, "new")]


def test_a_record_without_a_current_vector_is_not_reused() -> None:
    stale = [Existing("r0", "a", None, reusable=False), Existing("r1", "b", None)]
    plan = plan_diff(stale, new("a", "b"))
    assert [rec.id for rec, _ in plan.keep] == ["r1"]
    assert [w.text for w in plan.add] == ["a"] and [r.id for r in plan.remove] == ["r0"]


def test_only_the_first_few_changes_are_listed() -> None:
    many = [f"p{i}" for i in range(20)]
    plan = plan_diff(old(*many), new(*[t + "!" for t in many]))
    assert len(plan.add) == len(plan.remove) == 20
    assert len(plan.changed) == CHANGED_SHOWN
    assert plan.changed[0] == Change(0, "p0", "p0!")

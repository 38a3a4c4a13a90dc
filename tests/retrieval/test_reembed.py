from __future__ import annotations

from sqlalchemy import select, update

from openbotkit.engine import Engine
from openbotkit.retrieval.reembed import reembed, stale_records
from openbotkit.store.tables import RecordVector


def test_records_of_another_model_are_reembedded_and_found_again(engine: Engine) -> None:
    ds = engine.execute("create_dataset", {})["id"]
    engine.execute(
        "create_dataset_record", {"datasetId": ds, "text": "Penguins live in Antarctica."}
    )
    with engine.store.session() as session:  # as if they had been embedded by an older model
        session.execute(update(RecordVector).values(model_id="old/model"))
    found = engine.execute(
        "search_dataset", {"datasetId": ds, "search": "birds of the south pole", "mode": "dense"}
    )
    assert found["records"] == []  # vectors of another model are not comparable
    runtime = engine.runtime
    model_id = runtime.embedder.model_id
    assert len(stale_records(runtime.store, model_id, 10)) == 1
    assert reembed(runtime.store, runtime.embedder, runtime.index) == 1
    assert stale_records(runtime.store, model_id, 10) == []
    with engine.store.session(write=False) as session:
        assert set(session.scalars(select(RecordVector.model_id))) == {model_id}
    found = engine.execute(
        "search_dataset", {"datasetId": ds, "search": "birds of the south pole", "mode": "dense"}
    )
    assert found["records"][0]["text"] == "Penguins live in Antarctica."

from __future__ import annotations

import pytest
from sqlalchemy import select

from openbotkit.engine import Engine
from openbotkit.errors import InvalidInput, NotFound
from openbotkit.services import crud
from openbotkit.services.context import Ctx
from openbotkit.store.tables import Record
from tests.conftest import RunAction


def test_dataset_settings_round_trip_and_store_is_constant(run: RunAction) -> None:
    ds_id = run(
        "create_dataset",
        {
            "name": "KB",
            "store": "ignored",
            "searchMaxRecords": 5,
            "searchMinScore": 0.2,
            "recordMaxTokens": 300,
            "separators": "\n\n",
            "matchInstruction": "Use these:",
        },
    )["id"]
    ds = run("fetch_dataset", {"datasetId": ds_id})
    assert (ds["searchMaxRecords"], ds["searchMinScore"], ds["recordMaxTokens"]) == (5, 0.2, 300)
    assert ds["store"] == "default"
    assert ds["separators"] == "\n\n"


@pytest.mark.parametrize(
    "data",
    [
        {"searchMaxRecords": 0},
        {"searchMinScore": -1},
        {"recordMaxTokens": 0},
        {"separators": ["\n"]},
    ],
)
def test_dataset_setting_rules(run: RunAction, data: dict[str, object]) -> None:
    with pytest.raises(InvalidInput) as err:
        run("create_dataset", data)
    assert err.value.details[0].pointer == "/" + next(iter(data))


def test_records_crud_and_blank_text_refused(run: RunAction) -> None:
    ds_id = run("create_dataset", {})["id"]
    rec_id = run(
        "create_dataset_record",
        {"datasetId": ds_id, "text": "Paris is the capital of France.", "source": "atlas"},
    )["id"]
    ref = {"datasetId": ds_id, "recordId": rec_id}
    assert run("fetch_dataset_record", ref)["source"] == "atlas"
    run("update_dataset_record", {**ref, "text": "Lyon is in France.", "meta": {"p": 2}})
    assert run("fetch_dataset_record", ref)["text"] == "Lyon is in France."
    with pytest.raises(InvalidInput):
        run("create_dataset_record", {"datasetId": ds_id, "text": "   "})
    with pytest.raises(InvalidInput):
        run("update_dataset_record", {**ref, "text": " "})
    run("delete_dataset_record", ref)
    with pytest.raises(NotFound):
        run("fetch_dataset_record", ref)


def test_record_of_another_dataset_is_not_found(run: RunAction) -> None:
    a = run("create_dataset", {})["id"]
    b = run("create_dataset", {})["id"]
    rec_id = run("create_dataset_record", {"datasetId": a, "text": "x"})["id"]
    with pytest.raises(NotFound):
        run("fetch_dataset_record", {"datasetId": b, "recordId": rec_id})


def test_deleting_a_dataset_deletes_records_and_unlinks_bots(run: RunAction) -> None:
    ds_id = run("create_dataset", {"alias": "kb"})["id"]
    run("create_dataset_record", {"datasetId": "@kb", "text": "x"})
    bot_id = run("create_bot", {"datasetId": "@kb"})["id"]
    assert run("fetch_bot", {"botId": bot_id})["datasetId"] == ds_id
    run("delete_dataset", {"datasetId": ds_id})
    assert "datasetId" not in run("fetch_bot", {"botId": bot_id})
    assert run("fetch_usage")["database"]["records"] == 0


def test_files_metadata_crud(run: RunAction) -> None:
    file_id = run("create_file", {"name": "a.pdf", "visibility": "public", "meta": {"k": "v"}})[
        "id"
    ]
    run("update_file", {"fileId": file_id, "description": "doc"})
    f = run("fetch_file", {"fileId": file_id})
    assert (f["name"], f["description"], f["visibility"]) == ("a.pdf", "doc", "public")
    assert [x["id"] for x in run("list_files", {"meta": {"k": "v"}})["items"]] == [file_id]
    run("delete_file", {"fileId": file_id})
    with pytest.raises(NotFound):
        run("fetch_file", {"fileId": file_id})


@pytest.mark.parametrize("db_backend", ["postgresql"])
def test_a_record_deleted_by_another_request_while_updated_is_not_found(
    engine: Engine, run: RunAction
) -> None:
    # PostgreSQL runs writers side by side: the update read the record, another request deleted
    # it and committed, and the update's write then matches no row. A 404, not a 500.
    dataset = run("create_dataset", {})["id"]
    record = run("create_dataset_record", {"datasetId": dataset, "text": "Lamps glow."})["id"]
    account = engine.ensure_account("local")
    with (
        pytest.raises(NotFound, match="deleted by another request"),
        engine.store.session() as updating,
    ):
        row = updating.scalars(select(Record).where(Record.id == record)).one()
        run("delete_dataset_record", {"datasetId": dataset, "recordId": record})
        crud.update(Ctx(engine.runtime, updating, account), row, {"meta": {"k": "v"}})
    with pytest.raises(NotFound):
        run("fetch_dataset_record", {"datasetId": dataset, "recordId": record})

"""Dataset and dataset-record actions (spec §4, §5)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from openbotkit.actions.base import (
    MAX_INT32,
    NOT_BLANK,
    Alias,
    IdOutput,
    Input,
    ListInput,
    ListOutput,
    Meta,
    MetaFilterMixin,
    ModelString,
    Resource,
    Visibility,
    no_null_default,
)
from openbotkit.actions.registry import Effect, action
from openbotkit.services import crud, datasets, records
from openbotkit.services.context import AccountScope, Ctx
from openbotkit.store.tables import Dataset, Record

# Stored in INTEGER columns.
PositiveInt = Annotated[int | None, Field(ge=1, le=MAX_INT32)]


class DatasetFields(Input):
    alias: Alias = None
    name: str | None = None
    description: str | None = None
    meta: Meta = None
    blueprint_id: str | None = None
    reranker: ModelString = None
    record_max_tokens: PositiveInt = Field(None, description="Chunk size for file imports.")
    search_min_score: Annotated[float | None, Field(ge=0)] = Field(
        None, description="Drop matches scoring below this (0..1)."
    )
    search_max_records: PositiveInt = Field(None, description="Top-K of a search; default 3.")
    search_max_tokens: PositiveInt = Field(
        None, description="Token budget of records put into a prompt."
    )
    match_instruction: str | None = None
    mismatch_instruction: str | None = None
    separators: str | None = Field(None, description='Chunk separators, e.g. "\\n\\n".')
    visibility: Visibility | None = None


class CreateDatasetInput(DatasetFields):
    store: str | None = Field(None, description="Accepted for compatibility; ignored.")


class DatasetRef(Input):
    dataset_id: str = Field(description="Dataset id, or @alias.")


class UpdateDatasetInput(DatasetFields, DatasetRef):
    pass


class ListDatasetsInput(ListInput, MetaFilterMixin):
    blueprint_id: str | None = None


class DatasetOutput(Resource):
    alias: str | None = None
    name: str | None = None
    description: str | None = None
    meta: dict[str, object] | None = None
    blueprint_id: str | None = None
    store: str = "default"
    reranker: str | None = None
    record_max_tokens: int | None = None
    search_min_score: float | None = None
    search_max_records: int | None = None
    search_max_tokens: int | None = None
    match_instruction: str | None = None
    mismatch_instruction: str | None = None
    separators: str | None = None
    visibility: Visibility | None = None


# The parametrised page model, looked up once (not per request).
DATASET_PAGE = ListOutput[DatasetOutput]


@action("list_datasets", Effect.READ, "GET /dataset/list")
def list_datasets(ctx: Ctx, inp: ListDatasetsInput) -> ListOutput[DatasetOutput]:
    """List datasets, newest first, optionally filtered by meta."""
    rows, cursor = crud.page(ctx, Dataset, inp)
    return DATASET_PAGE(items=rows, cursor=cursor)


@action("fetch_dataset", Effect.READ, "GET /dataset/{datasetId}/fetch")
def fetch_dataset(ctx: Ctx, inp: DatasetRef) -> DatasetOutput:
    """Fetch one dataset with its search settings."""
    return DatasetOutput.model_validate(datasets.get(ctx, inp.dataset_id))


@action("create_dataset", Effect.WRITE, "POST /dataset/create")
def create_dataset(ctx: Ctx, inp: CreateDatasetInput) -> IdOutput:
    """Create a dataset (every field optional)."""
    return IdOutput(id=datasets.create(ctx, inp.set_fields(exclude={"store"})).id)


@action("update_dataset", Effect.WRITE, "POST /dataset/{datasetId}/update", idempotent=True)
def update_dataset(ctx: Ctx, inp: UpdateDatasetInput) -> IdOutput:
    """Change the given fields of a dataset; null clears a field."""
    fields = inp.set_fields(exclude={"dataset_id"})
    return IdOutput(id=datasets.update(ctx, inp.dataset_id, fields).id)


@action("delete_dataset", Effect.DESTRUCTIVE, "POST /dataset/{datasetId}/delete")
def delete_dataset(ctx: Ctx, inp: DatasetRef) -> IdOutput:
    """Delete a dataset with all its records and file attachments."""
    return IdOutput(id=datasets.delete(ctx, inp.dataset_id))


# -- records -------------------------------------------------------------------------------


class RecordRef(DatasetRef):
    record_id: str


class CreateRecordInput(DatasetRef):
    text: str = Field(min_length=1, pattern=NOT_BLANK, description="The record's text (not blank).")
    source: str | None = Field(None, description="Where the text came from (a URL or file:///id).")
    meta: Meta = None


class UpdateRecordInput(RecordRef):
    # null is refused (a record always has text): absent from the published schema.
    text: SkipJsonSchema[None] | Annotated[str, Field(min_length=1, pattern=NOT_BLANK)] = Field(
        None, json_schema_extra=no_null_default
    )
    source: str | None = None
    meta: Meta = None


class ListRecordsInput(ListInput, DatasetRef):
    pass


class RecordOutput(Resource):
    text: str
    source: str | None = None
    meta: dict[str, object] | None = None


@action("list_dataset_records", Effect.READ, "GET /dataset/{datasetId}/record/list")
def list_dataset_records(ctx: Ctx, inp: ListRecordsInput) -> ListOutput[RecordOutput]:
    """List the records of a dataset, newest first."""
    dataset = datasets.get(ctx, inp.dataset_id)
    rows, cursor = crud.page(ctx, Record, inp, equal={"dataset_id": dataset.id})
    return ListOutput[RecordOutput](items=rows, cursor=cursor)


@action("fetch_dataset_record", Effect.READ, "GET /dataset/{datasetId}/record/{recordId}/fetch")
def fetch_dataset_record(ctx: Ctx, inp: RecordRef) -> RecordOutput:
    """Fetch one record of a dataset."""
    return RecordOutput.model_validate(records.get(ctx, inp.dataset_id, inp.record_id))


@action(
    "create_dataset_record",
    Effect.WRITE,
    "POST /dataset/{datasetId}/record/create",
    own_transactions=True,
)
def create_dataset_record(scope: AccountScope, inp: CreateRecordInput) -> IdOutput:
    """Add a record to a dataset; it is searchable as soon as this returns."""
    fields = inp.set_fields(exclude={"dataset_id"})
    # Embedded before the write transaction opens: writers never queue behind a model.
    vectors = records.embed_for_write(scope, [fields])
    with scope.transaction() as ctx:
        dataset = datasets.get(ctx, inp.dataset_id)
        return IdOutput(id=records.create_many(ctx, dataset, [fields], vectors)[0].id)


@action(
    "update_dataset_record",
    Effect.WRITE,
    "POST /dataset/{datasetId}/record/{recordId}/update",
    own_transactions=True,
    idempotent=True,
)
def update_dataset_record(scope: AccountScope, inp: UpdateRecordInput) -> IdOutput:
    """Change a record's text, source or meta."""
    fields = inp.set_fields(exclude={"dataset_id", "record_id"})
    vector = None
    if isinstance(fields.get("text"), str):
        vector = records.embed_for_write(scope, [fields])[0]
    with scope.transaction() as ctx:
        return IdOutput(id=records.update(ctx, inp.dataset_id, inp.record_id, fields, vector).id)


@action(
    "delete_dataset_record",
    Effect.DESTRUCTIVE,
    "POST /dataset/{datasetId}/record/{recordId}/delete",
)
def delete_dataset_record(ctx: Ctx, inp: RecordRef) -> IdOutput:
    """Delete one record of a dataset."""
    return IdOutput(id=records.delete(ctx, inp.dataset_id, inp.record_id))

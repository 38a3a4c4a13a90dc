"""Dataset search (spec §4.1)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from openbotkit.actions.base import Input, Output
from openbotkit.actions.registry import Effect, action
from openbotkit.services import datasets
from openbotkit.services.context import Ctx
from openbotkit.services.search import search_records


class SearchDatasetInput(Input):
    dataset_id: str = Field(description="Dataset id, or @alias.")
    search: str = Field(min_length=1, description="Text to search for.")
    filter: dict[str, Any] | None = Field(
        None,
        description=(
            "Record meta conditions, ANDed: {key: value} or {key: {$eq|$ne|$gt|$gte|$lt|$lte:"
            " value}}; applied before the top-k cut."
        ),
    )
    mode: Literal["hybrid", "dense", "lexical"] = Field(
        "hybrid", description="openbotkit extension: ranking by meaning, keywords, or both."
    )


class SearchRecord(Output):
    id: str
    text: str
    source: str | None = None
    meta: dict[str, Any] | None = None
    score: float = Field(description="0..1; cosine similarity in hybrid and dense mode.")


class SearchDatasetOutput(Output):
    id: str
    records: list[SearchRecord]


@action("search_dataset", Effect.READ, "POST /dataset/{datasetId}/search", offload=True)
def search_dataset(ctx: Ctx, inp: SearchDatasetInput) -> SearchDatasetOutput:
    """Find the records of a dataset closest to a text, by meaning and by keywords."""
    dataset = datasets.get(ctx, inp.dataset_id)  # resolves an @alias
    found = search_records(ctx, dataset, inp.search, filter=inp.filter, mode=inp.mode)
    return SearchDatasetOutput(
        id=dataset.id,
        records=[SearchRecord.model_validate(r) for r in found],
    )

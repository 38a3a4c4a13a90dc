"""Retrieval evaluation (an openbotkit extension): a dataset's search measured on labelled
queries."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, WithJsonSchema

from openbotkit.actions.base import Input, Output
from openbotkit.actions.registry import Effect, action
from openbotkit.retrieval.filters import record_filter_schema
from openbotkit.services import evaluation
from openbotkit.services.context import Ctx

SearchMode = Literal["hybrid", "dense", "lexical"]


class RelevantByMeta(Input):
    # The filter's rules are checked where filters are read (retrieval/filters.py, which names
    # the key at fault); the schema states the same rules for clients.
    meta: Annotated[
        dict[str, Any],
        Field(min_length=1),
        WithJsonSchema({**record_filter_schema(), "minProperties": 1}),
    ] = Field(
        description="Record meta conditions, a search filter ({key: value} or {key: {$eq|$ne|"
        "$gt|$gte|$lt|$lte: value}}): every matching record stands for this item, which counts "
        "as found at the first of them."
    )


class LabelledQuery(Input):
    query: str = Field(min_length=1, pattern=r"\S", description="The search text.")
    relevant: Annotated[
        list[Annotated[str, Field(min_length=1)] | RelevantByMeta], Field(min_length=1)
    ] = Field(
        description="What a good search finds: ids of the dataset's records, or {meta: {...}} "
        'for records identified by meta (e.g. {"meta": {"docId": "4983"}}); each must match '
        "at least one record."
    )


class EvaluateDatasetInput(Input):
    dataset_id: str = Field(description="Dataset id, or @alias.")
    queries: Annotated[
        list[LabelledQuery], Field(min_length=1, max_length=evaluation.MAX_QUERIES)
    ] = Field(description=f"Labelled queries; at most {evaluation.MAX_QUERIES} per request.")
    k: int = Field(10, ge=1, le=evaluation.MAX_K, description="Depth of each ranking.")
    modes: Annotated[list[SearchMode], Field(min_length=1)] = Field(
        default_factory=lambda: list(evaluation.ALL_MODES),
        description="Search modes to measure; default all three.",
    )


class QueryRanksOutput(Output):
    query: str
    ranks: list[int | None] = Field(
        description="1-based rank of each relevant item, in the order given; null when not in "
        "the top k."
    )


class ModeOutput(Output):
    ndcg: float = Field(description="Mean nDCG@k.")
    recall: float = Field(description="Mean recall@k.")
    mrr: float = Field(description="Mean reciprocal rank of the first relevant item (0 past k).")
    queries: list[QueryRanksOutput]


class EvaluateDatasetOutput(Output):
    id: str
    k: int
    modes: dict[str, ModeOutput]


# long: an evaluation runs every query in every mode (seconds); the server runs it apart from the
# requests it admits (server/lanes.py).
@action(
    "evaluate_dataset", Effect.READ, "POST /dataset/{datasetId}/evaluate", offload=True, long=True
)
def evaluate_dataset(ctx: Ctx, inp: EvaluateDatasetInput) -> EvaluateDatasetOutput:
    """Measure a dataset's search on labelled queries: nDCG, recall and MRR at k, per mode."""
    queries = [
        evaluation.LabelledQuery(
            q.query, [r if isinstance(r, str) else {"meta": r.meta} for r in q.relevant]
        )
        for q in inp.queries
    ]
    dataset_id, figures = evaluation.evaluate(
        ctx, inp.dataset_id, queries, k=inp.k, modes=inp.modes
    )
    return EvaluateDatasetOutput.model_validate({"id": dataset_id, "k": inp.k, "modes": figures})

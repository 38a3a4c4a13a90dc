"""Evaluation (openbotkit extensions): a dataset's search measured on labelled queries, and a
bot's answers measured on questions with known answers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, ValidationInfo, WithJsonSchema, field_validator

from openbotkit.actions.base import NOT_BLANK, Input, Output
from openbotkit.actions.completion import result_of
from openbotkit.actions.registry import Effect, action
from openbotkit.retrieval.filters import record_filter_schema
from openbotkit.services import bot_evaluation, evaluation
from openbotkit.services.context import AccountScope, Ctx

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


# -- a bot's answers ---------------------------------------------------------------------------

ExpectedAnswer = Annotated[
    str, Field(min_length=1, max_length=bot_evaluation.MAX_ANSWER_CHARS, pattern=NOT_BLANK)
]


class BotQuestion(Input):
    # The schema states the rule _answers_or_unanswerable enforces: `answers` unless
    # `unanswerable` is true, and then no answers.
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"unanswerable": {"const": True}}, "required": ["unanswerable"]},
            "then": {"properties": {"answers": {"type": "null"}}},
            "else": {"properties": {"answers": {"type": "array"}}, "required": ["answers"]},
        }
    )

    id: str | None = Field(
        None,
        max_length=bot_evaluation.MAX_ID_CHARS,
        description="The question's own id, echoed in the result.",
    )
    question: str = Field(
        min_length=1,
        max_length=bot_evaluation.MAX_QUESTION_CHARS,
        pattern=NOT_BLANK,
        description="What the user asks.",
    )
    unanswerable: bool = Field(
        False,
        description="True when the bot's data does not hold the answer: only a refusal that "
        "states no value is right.",
    )
    answers: (
        Annotated[list[ExpectedAnswer], Field(min_length=1, max_length=bot_evaluation.MAX_ANSWERS)]
        | None
    ) = Field(
        None,
        validate_default=True,
        description="Right answers: an answer containing one of them is right (case, spacing "
        "and thousands separators ignored). Required unless `unanswerable` is true.",
    )
    record_id: str | None = Field(
        None,
        max_length=bot_evaluation.MAX_ID_CHARS,
        description="Accepted for the grounded-qa layout (the record holding the answer); not "
        "used in scoring.",
    )

    @field_validator("answers")
    @classmethod
    def _answers_or_unanswerable(
        cls, value: list[str] | None, info: ValidationInfo
    ) -> list[str] | None:
        unanswerable = info.data.get("unanswerable", False)
        if unanswerable and value:
            raise ValueError("give `answers` or `unanswerable: true`, not both")
        if not unanswerable and not value:
            raise ValueError("required unless `unanswerable` is true")
        return value


class EvaluateBotInput(Input):
    bot_id: str = Field(description="Bot id, or @alias.")
    questions: Annotated[
        list[BotQuestion], Field(min_length=1, max_length=bot_evaluation.MAX_QUESTIONS)
    ] = Field(
        description=f"At most {bot_evaluation.MAX_QUESTIONS} per request; each is asked in a new "
        "conversation with the bot."
    )
    keep_conversations: bool = Field(
        False,
        description="Keep the evaluation's conversations (named `evaluation: <id>`) to read "
        "later; by default they are deleted once scored.",
    )


class AnswerCounts(Output):
    count: int
    right: int = Field(description="Answers containing an expected answer.")
    refused: int = Field(description="Refusals (not counted wrong).")
    wrong: int = Field(description="Neither right nor refused.")
    right_rate: float | None = None
    refused_rate: float | None = None
    wrong_rate: float | None = None


class RefusalCounts(Output):
    count: int
    refused: int = Field(description="Right: refusals that state no value.")
    wrong: int = Field(description="Anything but a refusal.")
    refused_rate: float | None = None
    wrong_rate: float | None = None


class Seconds(Output):
    p50: float
    p95: float
    total: float


class AnsweredQuestion(Output):
    id: str | None = None
    question: str
    answerable: bool
    verdict: Literal["right", "refused", "wrong"]
    text: str = Field(description="The bot's answer, as stored in its conversation.")
    grounding: float | None = Field(None, description="The answer's `meta.grounding`.")
    supported: bool = Field(
        description=f"grounding >= {bot_evaluation.SUPPORTED}: shown as fully supported."
    )
    seconds: float = Field(description="The completion's time, retrieval to stored answer.")
    conversation_id: str | None = Field(None, description="With keepConversations.")
    message_id: str | None = Field(None, description="The bot message, with keepConversations.")


class EvaluateBotOutput(Output):
    id: str = Field(description="The bot's id.")
    answerable: AnswerCounts
    unanswerable: RefusalCounts
    wrong_supported: int = Field(
        description="Wrong answers (of either kind) whose grounding marks them fully supported."
    )
    seconds: Seconds = Field(description="Seconds per answer.")
    kept_conversations: bool
    questions: list[AnsweredQuestion]


def stream_evaluate_bot(scope: AccountScope, inp: EvaluateBotInput) -> Iterator[dict[str, Any]]:
    questions = [
        bot_evaluation.Question(q.question, None if q.unanswerable else q.answers, q.id)
        for q in inp.questions
    ]
    return bot_evaluation.evaluate(
        scope, inp.bot_id, questions, keep_conversations=inp.keep_conversations
    )


# A stream: one `answer` event per question as it is scored, then `result` (the output); the
# plain form runs the same stream. Long work, in the server's lane apart from admitted requests.
@action(
    "evaluate_bot",
    Effect.WRITE,
    "POST /bot/{botId}/evaluate",
    open_world=True,  # the bot's model may be a remote one
    own_transactions=True,
    long=True,
    stream=stream_evaluate_bot,
)
def evaluate_bot(scope: AccountScope, inp: EvaluateBotInput) -> EvaluateBotOutput:
    """Measure a bot's answers on questions with known answers: right, refused, wrong, supported."""
    return result_of(stream_evaluate_bot(scope, inp), EvaluateBotOutput)

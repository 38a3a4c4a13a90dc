"""A completion's prepared turn: the model and its options, the prompt, and what the prompt was
built from (backstory, history, the records found and their facts), so a grounded answer can be
rebuilt with more facts (an action's result) and its sources and citations described.

Its own module, below both the completion (services/completion.py, which prepares it) and the
tool loop (services/answering.py, which answers with it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from openbotkit.models.modelstring import ModelSpec
from openbotkit.models.prompt import Turn, build_messages, context_block
from openbotkit.models.providers import ChatMessage, GenerationOptions, LLMProvider
from openbotkit.retrieval.citations import SourceRecord, align
from openbotkit.retrieval.embedders import Embedder


@dataclass
class Prepared:
    provider: LLMProvider
    spec: ModelSpec
    messages: list[ChatMessage]
    options: GenerationOptions
    # The records put in the prompt, and the embedder to cite them with (None: no dataset).
    records: list[SourceRecord] = field(default_factory=list)
    embedder: Embedder | None = None
    # Each record's search score, in the order of `records`.
    scores: list[float] = field(default_factory=list)
    # What the prompt was built from, so a grounded answer can be rebuilt with more facts (the
    # result of an action the local model chose).
    backstory: str | None = None
    history: list[Turn] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)
    match_instruction: str | None = None
    mismatch_instruction: str | None = None

    def with_facts(self, extra: Sequence[str]) -> list[ChatMessage]:
        """The prompt again, `extra` numbered after the facts it already had."""
        context = context_block(
            [*self.facts, *extra], self.match_instruction, self.mismatch_instruction
        )
        return build_messages(
            self.provider,
            backstory=self.backstory,
            context=context,
            history=self.history,
            max_new_tokens=self.options.max_tokens,
        )

    def answer_meta(self, answer: str) -> dict[str, Any]:
        """The bot message's meta: the records used and, when a dataset was consulted, which
        sentences of the answer they support (citations, unsupported, grounding).
        `sourceRecords` gives each record as a reader needs it without another request (a
        widget's key may not read datasets): text, origin, dataset and score."""
        meta: dict[str, Any] = {
            "sources": [r.id for r in self.records],
            "sourceRecords": [
                {
                    "id": r.id,
                    "datasetId": r.dataset_id,
                    "score": round(score, 4),
                    "text": r.text,
                    "source": r.source,
                }
                for r, score in zip(self.records, self.scores, strict=True)
            ],
            "model": self.spec.name,
        }
        if self.embedder is not None:
            meta.update(align(answer, self.records, self.embedder).as_meta())
        return meta

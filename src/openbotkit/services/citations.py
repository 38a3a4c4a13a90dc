"""Checking a bot answer's citations against the records as they are now.

Records change after an answer (edits, re-syncs, deletions); a citation stays true only while its
record still holds the quoted text verbatim. The alignment that made the citations is in
retrieval/citations.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from openbotkit.errors import InvalidInput, Problem
from openbotkit.services import conversations
from openbotkit.services.context import Ctx
from openbotkit.store.tables import Record


@dataclass(frozen=True)
class CitationCheck:
    record_id: str
    ok: bool


def _cited(meta: dict[str, Any] | None, message_id: str) -> list[tuple[str, str | None, str]]:
    """(recordId, datasetId, quote) of each citation in a message's meta, checked for shape:
    meta can be edited by hand, so a malformed entry is the caller's error, not ours."""
    citations = (meta or {}).get("citations")
    if not isinstance(citations, list):
        raise InvalidInput(
            f"message {message_id} has no citations: only bot answers from a dataset carry them",
            details=[Problem("/messageId", "citations", "no meta.citations on this message")],
        )
    out = []
    for i, item in enumerate(citations):
        if not (
            isinstance(item, dict)
            and isinstance(item.get("recordId"), str)
            and isinstance(item.get("quote"), str)
            and isinstance(item.get("datasetId"), str | None)
        ):
            raise InvalidInput(
                f"meta.citations[{i}] of message {message_id} is malformed",
                details=[
                    Problem(f"/meta/citations/{i}", "citation", "needs string recordId and quote")
                ],
            )
        out.append((item["recordId"], item.get("datasetId"), item["quote"]))
    return out


def verify(ctx: Ctx, conversation_ref: str, message_id: str) -> list[CitationCheck]:
    """Each citation of the message, in order, with whether its record (same account, same
    dataset) still contains its quote verbatim. A deleted record fails its citations."""
    message = conversations.get_message(ctx, conversation_ref, message_id)
    cited = _cited(message.meta, message.id)
    ids = {record_id for record_id, _, _ in cited}
    rows = {
        r.id: (r.dataset_id, r.text)
        for r in ctx.session.execute(
            select(Record.id, Record.dataset_id, Record.text).where(
                Record.account_id == ctx.account_id, Record.id.in_(ids)
            )
        )
    }
    checks = []
    for record_id, dataset_id, quote in cited:
        row = rows.get(record_id)
        ok = (
            row is not None
            and (dataset_id is None or row[0] == dataset_id)
            and bool(quote)
            and quote in row[1]
        )
        checks.append(CitationCheck(record_id, ok))
    return checks

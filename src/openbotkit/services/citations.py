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
from openbotkit.store.tables import Bot, Conversation, Record


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


# Fields of a message's meta that name records: the platform writes them on its answers.
RECORD_FIELDS = ("citations", "sources", "sourceRecords")


def refuse_record_fields(ctx: Ctx, meta: dict[str, Any] | None) -> None:
    """InvalidInput naming each field, when a key limited to bots and datasets writes meta that
    names records (citations, sources) into a message: only the platform's answers carry them,
    and a written citation would make verify_message an oracle for records' text."""
    key = ctx.key
    if key is None or not key.limited or not meta:
        return
    given = [name for name in RECORD_FIELDS if name in meta]
    if given:
        raise InvalidInput(
            "meta."
            + ", meta.".join(given)
            + " name records: only the platform's own answers carry them, and a key limited to"
            " bots and datasets may not write them",
            details=[
                Problem(f"/meta/{name}", "forbidden", "written by answers only") for name in given
            ],
        )


def reachable_datasets(ctx: Ctx, conversation: Conversation) -> set[str] | None:
    """The datasets whose records the acting key may have confirmed (None: all the account's).

    A key limited to bots and datasets reaches its datasets, its bots' datasets, and the one
    the conversation answers from (its answers already quote that dataset's records)."""
    key = ctx.key
    if key is None or not key.limited:
        return None
    reach = set(key.datasets or ())
    bot_ids = set(key.bots or ())
    if bot_ids:
        reach.update(
            d
            for d in ctx.session.scalars(
                select(Bot.dataset_id).where(Bot.account_id == ctx.account_id, Bot.id.in_(bot_ids))
            )
            if d
        )
    if conversation.dataset_id:
        reach.add(conversation.dataset_id)
    return reach


def verify(ctx: Ctx, conversation_ref: str, message_id: str) -> list[CitationCheck]:
    """Each citation of the message, in order, with whether its record (same account, same
    dataset, within the acting key's reach) still contains its quote verbatim. A deleted record
    fails its citations, as does one the key does not reach: a guess about a record elsewhere
    learns nothing."""
    conversation = conversations.get(ctx, conversation_ref)
    message = conversations.get_message(ctx, conversation.id, message_id)
    cited = _cited(message.meta, message.id)
    ids = {record_id for record_id, _, _ in cited}
    query = select(Record.id, Record.dataset_id, Record.text).where(
        Record.account_id == ctx.account_id, Record.id.in_(ids)
    )
    reach = reachable_datasets(ctx, conversation)
    if reach is not None:
        query = query.where(Record.dataset_id.in_(reach))
    rows = {r.id: (r.dataset_id, r.text) for r in ctx.session.execute(query)}
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

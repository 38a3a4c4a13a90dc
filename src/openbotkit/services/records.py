"""Dataset records: the chunks of text that search retrieves.

Every write path goes through this module, so each record is indexed in the same transaction
that stores it: searchable by every process once committed, never half-way. The embedding is
computed before that transaction opens (`embed_for_write`), never while it holds the lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import select

from openbotkit.errors import InvalidInput, NotFound, Problem
from openbotkit.ids import new_id, now_ms
from openbotkit.retrieval.embedders import Vectors
from openbotkit.retrieval.lexical import count_words
from openbotkit.services import crud, datasets
from openbotkit.services.context import AccountScope, Ctx
from openbotkit.store.tables import Dataset, Record


def _check_text(text: str, pointer: str = "/text") -> None:
    if not text.strip():
        raise InvalidInput(
            "record text must not be blank", details=[Problem(pointer, "non_blank", "blank text")]
        )


def get(ctx: Ctx, dataset_ref: str, record_id: str) -> Record:
    dataset = datasets.get(ctx, dataset_ref)
    record = ctx.session.scalar(
        select(Record).where(
            Record.account_id == ctx.account_id,
            Record.dataset_id == dataset.id,
            Record.id == record_id,
        )
    )
    if record is None:
        raise NotFound(
            f"record {record_id!r} not found in dataset {dataset.id}",
            details=[Problem("/recordId", "exists", "no such record in this dataset")],
        )
    return record


def create(ctx: Ctx, dataset_ref: str, fields: dict[str, Any]) -> Record:
    """Add one record to a dataset."""
    dataset = datasets.get(ctx, dataset_ref)
    return create_many(ctx, dataset, [fields])[0]


def create_many(
    ctx: Ctx,
    dataset: Dataset,
    items: Sequence[dict[str, Any]],
    vectors: Vectors | None = None,
) -> list[Record]:
    """Add records in bulk, embedded and indexed in the caller's transaction: all or none.

    Pass `vectors` (from `embed_texts`) to embed before opening a write transaction, so a big
    batch does not hold the database's write lock while the model runs.
    """
    for i, item in enumerate(items):
        _check_text(item.get("text", ""), f"/{i}/text" if len(items) > 1 else "/text")
    embedder = ctx.runtime.embedder
    if vectors is None:
        vectors = embedder.embed([item["text"] for item in items])
    now = now_ms()
    rows = [
        Record(
            id=new_id(),
            account_id=ctx.account_id,
            dataset_id=dataset.id,
            created_at=now,
            updated_at=now,
            text=item["text"],
            tokens=count_words(item["text"]),
            source=item.get("source"),
            meta=item.get("meta"),
        )
        for item in items
    ]
    ctx.session.add_all(rows)
    ctx.session.flush()
    ctx.runtime.index.add(ctx.session, dataset.id, [r.id for r in rows], vectors, embedder.model_id)
    return rows


def embed_texts(ctx: Ctx, texts: Sequence[str]) -> Vectors:
    """Embed texts for `create_many` with the installation's embedder."""
    return ctx.runtime.embedder.embed(texts)


def embed_for_write(scope: AccountScope, items: Sequence[dict[str, Any]]) -> Vectors:
    """Check and embed records' texts with no transaction open (the model, local or remote,
    may take a while; a write transaction would hold every other writer meanwhile)."""
    for i, item in enumerate(items):
        _check_text(item.get("text") or "", f"/{i}/text" if len(items) > 1 else "/text")
    return scope.runtime.embedder.embed([item["text"] for item in items])


def update(
    ctx: Ctx,
    dataset_ref: str,
    record_id: str,
    fields: dict[str, Any],
    vector: Vectors | None = None,
) -> Record:
    record = get(ctx, dataset_ref, record_id)
    if "text" in fields:
        if fields["text"] is None:
            raise InvalidInput(
                "record text cannot be cleared", details=[Problem("/text", "type", "null text")]
            )
        _check_text(fields["text"])
    text_changed = "text" in fields and fields["text"] != record.text
    if text_changed:
        fields = {**fields, "tokens": count_words(fields["text"])}
    crud.update(ctx, record, fields)
    index = ctx.runtime.index
    if text_changed:
        embedder = ctx.runtime.embedder
        if vector is None:
            vector = embedder.embed([record.text])[0]
        index.replace(ctx.session, record.dataset_id, record.id, vector, embedder.model_id)
    else:
        index.touch(ctx.session, record.dataset_id)
    return record


def delete(ctx: Ctx, dataset_ref: str, record_id: str) -> str:
    record = get(ctx, dataset_ref, record_id)
    ctx.session.delete(record)  # its vector and full-text entry go with it (cascade, trigger)
    ctx.session.flush()
    ctx.runtime.index.touch(ctx.session, record.dataset_id)
    return record.id


def delete_by_source(ctx: Ctx, dataset: Dataset, source: str) -> int:
    """Remove every record of a dataset that came from `source` (e.g. file:///<fileId>)."""
    result = ctx.session.execute(
        sql_delete(Record).where(
            Record.account_id == ctx.account_id,
            Record.dataset_id == dataset.id,
            Record.source == source,
        )
    )
    ctx.runtime.index.touch(ctx.session, dataset.id)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]

"""Dataset records: the chunks of text that search retrieves.

Every write path goes through this module so the search index stays consistent with the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import select

from openbotkit.errors import InvalidInput, NotFound, Problem
from openbotkit.ids import new_id, now_ms
from openbotkit.services import crud, datasets
from openbotkit.services.context import Ctx
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


def create_many(ctx: Ctx, dataset: Dataset, items: Sequence[dict[str, Any]]) -> list[Record]:
    """Add records in bulk (ingestion uses this); all or none, in the caller's transaction."""
    for i, item in enumerate(items):
        _check_text(item.get("text", ""), f"/{i}/text" if len(items) > 1 else "/text")
    now = now_ms()
    rows = [
        Record(
            id=new_id(),
            account_id=ctx.account_id,
            dataset_id=dataset.id,
            created_at=now,
            updated_at=now,
            text=item["text"],
            source=item.get("source"),
            meta=item.get("meta"),
        )
        for item in items
    ]
    ctx.session.add_all(rows)
    ctx.session.flush()
    return rows


def update(ctx: Ctx, dataset_ref: str, record_id: str, fields: dict[str, Any]) -> Record:
    record = get(ctx, dataset_ref, record_id)
    if "text" in fields:
        if fields["text"] is None:
            raise InvalidInput(
                "record text cannot be cleared", details=[Problem("/text", "type", "null text")]
            )
        _check_text(fields["text"])
    crud.update(ctx, record, fields)
    return record


def delete(ctx: Ctx, dataset_ref: str, record_id: str) -> str:
    record = get(ctx, dataset_ref, record_id)
    ctx.session.delete(record)
    ctx.session.flush()
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
    return int(result.rowcount or 0)  # type: ignore[attr-defined]

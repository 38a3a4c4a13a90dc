"""Datasets: collections of records with the search settings used to retrieve from them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update as sql_update

from openbotkit.services import crud
from openbotkit.services.context import Ctx
from openbotkit.store.tables import Bot, Conversation, Dataset


def create(ctx: Ctx, fields: dict[str, Any]) -> Dataset:
    crud.check_alias_free(ctx, Dataset, fields.get("alias"))
    return crud.insert(ctx, Dataset, fields)


def get(ctx: Ctx, ref: str) -> Dataset:
    return crud.get_owned(ctx, Dataset, ref, field="datasetId")


def update(ctx: Ctx, ref: str, fields: dict[str, Any]) -> Dataset:
    dataset = get(ctx, ref)
    crud.check_alias_free(ctx, Dataset, fields.get("alias"), own_id=dataset.id)
    crud.update(ctx, dataset, fields)
    return dataset


def delete(ctx: Ctx, ref: str) -> str:
    """Delete a dataset with its records and file attachments; bots using it are unlinked."""
    dataset = get(ctx, ref)
    for table in (Bot, Conversation):
        ctx.session.execute(
            sql_update(table)
            .where(table.account_id == ctx.account_id, table.dataset_id == dataset.id)
            .values(dataset_id=None)
        )
    ctx.session.delete(dataset)
    ctx.session.flush()
    return dataset.id

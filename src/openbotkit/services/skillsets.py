"""Skillsets: named sets of abilities a bot or a conversation uses."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import update as sql_update

from openbotkit.services import crud
from openbotkit.services.context import Ctx
from openbotkit.store.tables import Ability, Bot, Conversation, Skillset


def create(ctx: Ctx, fields: dict[str, Any]) -> Skillset:
    crud.check_alias_free(ctx, Skillset, fields.get("alias"))
    return crud.insert(ctx, Skillset, fields)


def get(ctx: Ctx, ref: str) -> Skillset:
    return crud.get_owned(ctx, Skillset, ref, field="skillsetId")


def read(ctx: Ctx, ref: str) -> dict[str, Any]:
    return crud.read_owned(ctx, Skillset, ref, field="skillsetId")


def update(ctx: Ctx, ref: str, fields: dict[str, Any]) -> Skillset:
    skillset = get(ctx, ref)
    crud.check_alias_free(ctx, Skillset, fields.get("alias"), own_id=skillset.id)
    crud.update(ctx, skillset, fields)
    return skillset


def delete(ctx: Ctx, ref: str) -> str:
    """Delete a skillset with its abilities, in one transaction; bots and conversations that
    used it are unlinked (their skillsetId becomes null)."""
    skillset = get(ctx, ref)
    ctx.session.execute(
        sql_delete(Ability).where(
            Ability.account_id == ctx.account_id, Ability.skillset_id == skillset.id
        )
    )
    for table in (Bot, Conversation):
        ctx.session.execute(
            sql_update(table)
            .where(table.account_id == ctx.account_id, table.skillset_id == skillset.id)
            .values(skillset_id=None)
        )
    ctx.session.delete(skillset)
    ctx.session.flush()
    return skillset.id

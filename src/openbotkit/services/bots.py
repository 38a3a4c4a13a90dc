"""Bots: a model, a backstory and optionally a dataset, shared by the conversations that use it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update as sql_update

from openbotkit.services import crud
from openbotkit.services.context import Ctx
from openbotkit.store.tables import Bot, Conversation, Dataset, Integration, Skillset

REFS = {"dataset_id": Dataset, "skillset_id": Skillset}


def create(ctx: Ctx, fields: dict[str, Any]) -> Bot:
    crud.resolve_refs(ctx, fields, REFS)
    crud.check_alias_free(ctx, Bot, fields.get("alias"))
    return crud.insert(ctx, Bot, fields)


def get(ctx: Ctx, ref: str) -> Bot:
    return crud.get_owned(ctx, Bot, ref, field="botId")


def read(ctx: Ctx, ref: str) -> dict[str, Any]:
    """The bot's columns, for output (no ORM object: fetch is the most frequent call)."""
    return crud.read_owned(ctx, Bot, ref, field="botId")


def update(ctx: Ctx, ref: str, fields: dict[str, Any]) -> Bot:
    bot = get(ctx, ref)
    crud.resolve_refs(ctx, fields, REFS)
    crud.check_alias_free(ctx, Bot, fields.get("alias"), own_id=bot.id)
    crud.update(ctx, bot, fields)
    return bot


def delete(ctx: Ctx, ref: str) -> str:
    """Delete a bot; its conversations and integrations stay, unlinked (conversations with
    their history; integrations answer nothing until given another bot)."""
    bot = get(ctx, ref)
    ctx.session.execute(
        sql_update(Conversation)
        .where(Conversation.account_id == ctx.account_id, Conversation.bot_id == bot.id)
        .values(bot_id=None)
    )
    ctx.session.execute(
        sql_update(Integration)
        .where(Integration.account_id == ctx.account_id, Integration.bot_id == bot.id)
        .values(bot_id=None)
    )
    ctx.session.delete(bot)
    return bot.id

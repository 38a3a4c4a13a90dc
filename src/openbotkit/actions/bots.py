"""Bot actions (spec §2)."""

from __future__ import annotations

from pydantic import Field

from openbotkit.actions.base import (
    Alias,
    BotConfigFields,
    IdOutput,
    Input,
    ListInput,
    ListOutput,
    Meta,
    MetaFilterMixin,
    Resource,
    Visibility,
    public_view,
)
from openbotkit.actions.registry import Effect, action
from openbotkit.services import bots, crud
from openbotkit.services.context import Ctx
from openbotkit.store.tables import Bot


class BotFields(BotConfigFields):
    alias: Alias = None
    name: str | None = None
    description: str | None = None
    meta: Meta = None
    blueprint_id: str | None = None
    visibility: Visibility | None = None


class BotRef(Input):
    bot_id: str = Field(description="Bot id, or @alias.")


class CreateBotInput(BotFields):
    pass


class UpdateBotInput(BotFields, BotRef):
    pass


class ListBotsInput(ListInput, MetaFilterMixin):
    blueprint_id: str | None = None


class BotOutput(Resource):
    alias: str | None = None
    name: str | None = None
    description: str | None = None
    meta: dict[str, object] | None = None
    model: str | None = None
    backstory: str | None = None
    dataset_id: str | None = None
    skillset_id: str | None = None
    blueprint_id: str | None = None
    privacy: bool | None = None
    moderation: bool | None = None
    visibility: Visibility | None = None


# The parametrised page model, looked up once (not per request).
BOT_PAGE = ListOutput[BotOutput]


@action("list_bots", Effect.READ, "GET /bot/list")
def list_bots(ctx: Ctx, inp: ListBotsInput) -> ListOutput[BotOutput]:
    """List bots, newest first, optionally filtered by meta."""
    rows, cursor = crud.page(ctx, Bot, inp)
    return BOT_PAGE(items=rows, cursor=cursor)


@action("fetch_bot", Effect.READ, "GET /bot/{botId}/fetch")
def fetch_bot(ctx: Ctx, inp: BotRef) -> BotOutput:
    """Fetch one bot with its configuration."""
    return public_view(ctx.key, BotOutput.model_validate(bots.read(ctx, inp.bot_id)))


@action("create_bot", Effect.WRITE, "POST /bot/create")
def create_bot(ctx: Ctx, inp: CreateBotInput) -> IdOutput:
    """Create a bot (every field optional)."""
    return IdOutput(id=bots.create(ctx, inp.set_fields()).id)


@action("update_bot", Effect.WRITE, "POST /bot/{botId}/update", idempotent=True)
def update_bot(ctx: Ctx, inp: UpdateBotInput) -> IdOutput:
    """Change the given fields of a bot; null clears a field."""
    return IdOutput(id=bots.update(ctx, inp.bot_id, inp.set_fields(exclude={"bot_id"})).id)


@action("delete_bot", Effect.DESTRUCTIVE, "POST /bot/{botId}/delete")
def delete_bot(ctx: Ctx, inp: BotRef) -> IdOutput:
    """Delete a bot; its conversations keep their history."""
    return IdOutput(id=bots.delete(ctx, inp.bot_id))

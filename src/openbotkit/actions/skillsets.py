"""Skillset and ability actions: ChatBotKit's `/skillset` and `/skillset/{id}/ability`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field

from openbotkit.actions.base import (
    Alias,
    IdOutput,
    Input,
    ListInput,
    ListOutput,
    Meta,
    MetaFilterMixin,
    Resource,
    Visibility,
)
from openbotkit.actions.registry import Effect, action
from openbotkit.services import abilities, crud, skillsets
from openbotkit.services.context import Ctx
from openbotkit.store.tables import Ability, Skillset

State = Literal["enabled", "disabled"]


class SkillsetFields(Input):
    alias: Alias = None
    name: str | None = None
    description: str | None = None
    meta: Meta = None
    blueprint_id: str | None = None
    state: State | None = Field(None, description="Toggle it off without deleting it.")
    visibility: Visibility | None = None


class SkillsetRef(Input):
    skillset_id: str = Field(description="Skillset id, or @alias.")


class UpdateSkillsetInput(SkillsetFields, SkillsetRef):
    pass


class ListSkillsetsInput(ListInput, MetaFilterMixin):
    blueprint_id: str | None = None


class SkillsetOutput(Resource):
    alias: str | None = None
    name: str | None = None
    description: str | None = None
    meta: dict[str, object] | None = None
    blueprint_id: str | None = None
    state: State | None = None
    visibility: Visibility | None = None


SKILLSET_PAGE = ListOutput[SkillsetOutput]


@action("list_skillsets", Effect.READ, "GET /skillset/list")
def list_skillsets(ctx: Ctx, inp: ListSkillsetsInput) -> ListOutput[SkillsetOutput]:
    """List skillsets, newest first, optionally filtered by meta."""
    rows, cursor = crud.page(ctx, Skillset, inp)
    return SKILLSET_PAGE(items=rows, cursor=cursor)


@action("fetch_skillset", Effect.READ, "GET /skillset/{skillsetId}/fetch")
def fetch_skillset(ctx: Ctx, inp: SkillsetRef) -> SkillsetOutput:
    """Fetch one skillset."""
    return SkillsetOutput.model_validate(skillsets.read(ctx, inp.skillset_id))


@action("create_skillset", Effect.WRITE, "POST /skillset/create")
def create_skillset(ctx: Ctx, inp: SkillsetFields) -> IdOutput:
    """Create a skillset, a set of abilities a bot can use (every field optional)."""
    return IdOutput(id=skillsets.create(ctx, inp.set_fields()).id)


@action("update_skillset", Effect.WRITE, "POST /skillset/{skillsetId}/update", idempotent=True)
def update_skillset(ctx: Ctx, inp: UpdateSkillsetInput) -> IdOutput:
    """Change the given fields of a skillset; null clears a field."""
    fields = inp.set_fields(exclude={"skillset_id"})
    return IdOutput(id=skillsets.update(ctx, inp.skillset_id, fields).id)


@action("delete_skillset", Effect.DESTRUCTIVE, "POST /skillset/{skillsetId}/delete")
def delete_skillset(ctx: Ctx, inp: SkillsetRef) -> IdOutput:
    """Delete a skillset with its abilities; bots using it are unlinked."""
    return IdOutput(id=skillsets.delete(ctx, inp.skillset_id))


# -- abilities -----------------------------------------------------------------------------


class AbilityFields(Input):
    alias: Alias = None
    name: str | None = None
    description: str | None = Field(
        None, description="What the ability does: the model reads it to choose the ability."
    )
    instruction: str | None = Field(
        None,
        description=(
            "Text with at most one fenced action block (fetch, search, mcp/install, bot);"
            " checked when saved: a fault is invalid_input naming the line."
        ),
    )
    linked_bot_id: str | None = Field(None, description="Bot a `bot` block asks (id or @alias).")
    linked_secret_id: str | None = Field(
        None, description="Secret that ${SECRET_DEFAULT} stands for (id or @alias)."
    )
    meta: Meta = None
    blueprint_id: str | None = None
    state: State | None = Field(None, description="Toggle it off without deleting it.")


class AbilityRef(SkillsetRef):
    ability_id: str = Field(description="Ability id, or @alias.")


class CreateAbilityInput(AbilityFields, SkillsetRef):
    pass


class UpdateAbilityInput(AbilityFields, AbilityRef):
    pass


class ListAbilitiesInput(ListInput, SkillsetRef, MetaFilterMixin):
    pass


# ChatBotKit always returns an ability's name, description and instruction as strings (the
# official SDKs require them), "" when unset.
Text = Annotated[str, BeforeValidator(lambda value: value or "")]


class AbilityOutput(Resource):
    alias: str | None = None
    name: Text = ""
    description: Text = ""
    instruction: Text = ""
    linked_bot_id: str | None = None
    linked_secret_id: str | None = None
    meta: dict[str, object] | None = None
    blueprint_id: str | None = None
    state: State | None = None


ABILITY_PAGE = ListOutput[AbilityOutput]


@action("list_skillset_abilities", Effect.READ, "GET /skillset/{skillsetId}/ability/list")
def list_skillset_abilities(ctx: Ctx, inp: ListAbilitiesInput) -> ListOutput[AbilityOutput]:
    """List the abilities of a skillset, newest first."""
    skillset = skillsets.get(ctx, inp.skillset_id)
    rows, cursor = crud.page(ctx, Ability, inp, equal={"skillset_id": skillset.id})
    return ABILITY_PAGE(items=rows, cursor=cursor)


@action(
    "fetch_skillset_ability",
    Effect.READ,
    "GET /skillset/{skillsetId}/ability/{abilityId}/fetch",
)
def fetch_skillset_ability(ctx: Ctx, inp: AbilityRef) -> AbilityOutput:
    """Fetch one ability of a skillset."""
    return AbilityOutput.model_validate(abilities.read(ctx, inp.skillset_id, inp.ability_id))


@action("create_skillset_ability", Effect.WRITE, "POST /skillset/{skillsetId}/ability/create")
def create_skillset_ability(ctx: Ctx, inp: CreateAbilityInput) -> IdOutput:
    """Add an ability to a skillset; its instruction is checked before it is saved."""
    fields = inp.set_fields(exclude={"skillset_id"})
    return IdOutput(id=abilities.create(ctx, inp.skillset_id, fields).id)


@action(
    "update_skillset_ability",
    Effect.WRITE,
    "POST /skillset/{skillsetId}/ability/{abilityId}/update",
    idempotent=True,
)
def update_skillset_ability(ctx: Ctx, inp: UpdateAbilityInput) -> IdOutput:
    """Change the given fields of an ability; the resulting instruction is checked again."""
    fields = inp.set_fields(exclude={"skillset_id", "ability_id"})
    return IdOutput(id=abilities.update(ctx, inp.skillset_id, inp.ability_id, fields).id)


@action(
    "delete_skillset_ability",
    Effect.DESTRUCTIVE,
    "POST /skillset/{skillsetId}/ability/{abilityId}/delete",
)
def delete_skillset_ability(ctx: Ctx, inp: AbilityRef) -> IdOutput:
    """Delete one ability of a skillset."""
    return IdOutput(id=abilities.delete(ctx, inp.skillset_id, inp.ability_id))

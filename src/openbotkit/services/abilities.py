"""Abilities of a skillset: an instruction in ChatBotKit's format and the resources it links.

Every create and update checks the instruction as it will be stored (abilities/instruction.py)
against the account: `${SECRET_DEFAULT}` needs a linked secret, `${SECRET_<NAME>}` a secret with
that alias, a literal dataset or bot id in the block one of the account's. A fault is
`invalid_input` at `/instruction` naming the line, so a broken ability is refused when it is
saved, not when a conversation first needs it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from openbotkit.abilities import instruction as fmt
from openbotkit.errors import InvalidInput, NotFound, Problem
from openbotkit.services import crud, skillsets
from openbotkit.services.context import Ctx
from openbotkit.store.tables import Ability, AbilitySecret, Bot, Dataset

REFS = {"linked_bot_id": Bot, "linked_secret_id": AbilitySecret}


def create(ctx: Ctx, skillset_ref: str, fields: dict[str, Any]) -> Ability:
    skillset = skillsets.get(ctx, skillset_ref)
    crud.resolve_refs(ctx, fields, REFS)
    crud.check_alias_free(ctx, Ability, fields.get("alias"))
    check(
        ctx, fields.get("instruction"), fields.get("linked_bot_id"), fields.get("linked_secret_id")
    )
    return crud.insert(ctx, Ability, {**fields, "skillset_id": skillset.id})


def get(ctx: Ctx, skillset_ref: str, ref: str) -> Ability:
    skillset = skillsets.get(ctx, skillset_ref)
    ability = crud.get_owned(ctx, Ability, ref, field="abilityId")
    if ability.skillset_id != skillset.id:
        msg = f"ability {ref!r} not found in skillset {skillset.id} (field abilityId)"
        raise NotFound(msg, details=[Problem("/abilityId", "exists", msg)])
    return ability


def read(ctx: Ctx, skillset_ref: str, ref: str) -> dict[str, Any]:
    """The ability's columns, for output."""
    skillset = skillsets.get(ctx, skillset_ref)
    return crud.read_owned(ctx, Ability, ref, field="abilityId", skillset_id=skillset.id)


def update(ctx: Ctx, skillset_ref: str, ref: str, fields: dict[str, Any]) -> Ability:
    ability = get(ctx, skillset_ref, ref)
    crud.resolve_refs(ctx, fields, REFS)
    crud.check_alias_free(ctx, Ability, fields.get("alias"), own_id=ability.id)
    merged = {
        name: fields[name] if name in fields else getattr(ability, name)
        for name in ("instruction", "linked_bot_id", "linked_secret_id")
    }
    check(ctx, merged["instruction"], merged["linked_bot_id"], merged["linked_secret_id"])
    crud.update(ctx, ability, fields)
    return ability


def delete(ctx: Ctx, skillset_ref: str, ref: str) -> str:
    ability = get(ctx, skillset_ref, ref)
    ctx.session.delete(ability)
    ctx.session.flush()
    return ability.id


def check(
    ctx: Ctx, text: str | None, linked_bot_id: str | None, linked_secret_id: str | None
) -> fmt.Instruction | None:
    """Parse the instruction and check what it names exists in the account (module doc)."""
    if not text:
        return None
    parsed = fmt.parse(text)
    for ref in parsed.secrets:
        if ref.is_default and not linked_secret_id:
            raise _fault(
                ref.line,
                "${SECRET_DEFAULT} needs a linked secret: give linkedSecretId",
                "secret",
            )
        if not ref.is_default and _secret_by_name(ctx, ref) is None:
            raise _fault(
                ref.line,
                f"${{SECRET_{ref.name}}} names no secret of this account: create one with the"
                f" alias {ref.alias!r} (or {ref.alias.replace('_', '-')!r})",
                "secret",
            )
    action = parsed.action
    if action is not None and action.type in ("search", "bot"):
        target = action.target_id
        table: type[Dataset] | type[Bot] = Dataset if action.type == "search" else Bot
        if target is None and action.type == "bot" and not linked_bot_id:
            raise _fault(
                action.line,
                "a bot block asks a bot: give linkedBotId, or botId in the block",
                "required",
            )
        if target is not None and "$[" not in target and _owned_id(ctx, table, target) is None:
            what = "dataset" if table is Dataset else "bot"
            raise _fault(action.line, f"{what} {target!r} not found in this account", "exists")
    return parsed


def _fault(line: int, message: str, rule: str) -> InvalidInput:
    text = f"instruction line {line}: {message}"
    return InvalidInput(text, details=[Problem("/instruction", rule, text)])


def _owned_id(ctx: Ctx, table: type[Dataset] | type[Bot], ref: str) -> str | None:
    cond = table.alias == ref[1:] if ref.startswith("@") else table.id == ref
    found: str | None = ctx.session.scalar(
        select(table.id).where(table.account_id == ctx.account_id, cond)
    )
    return found


def _secret_by_name(ctx: Ctx, ref: fmt.SecretRef) -> str | None:
    aliases = {ref.alias, ref.alias.replace("_", "-")}
    found: str | None = ctx.session.scalar(
        select(AbilitySecret.id).where(
            AbilitySecret.account_id == ctx.account_id, AbilitySecret.alias.in_(aliases)
        )
    )
    return found

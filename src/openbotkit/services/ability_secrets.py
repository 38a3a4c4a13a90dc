"""Secrets abilities use to call services (ChatBotKit's `/secret`; API keys are services/secrets).

The value is encrypted before it reaches the database (runtime.vault) and no output carries it:
fetch and list return everything else. Decrypting is for the code that runs an ability.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from openbotkit.errors import Conflict, InvalidInput, Problem
from openbotkit.services import crud
from openbotkit.services.context import Ctx
from openbotkit.store.tables import Ability, AbilitySecret


def _seal(ctx: Ctx, fields: dict[str, Any], kind: str) -> dict[str, Any]:
    """`fields` with `value` replaced by its ciphertext, after checking it fits the type."""
    sealed = dict(fields)
    if "value" in sealed:
        value: str = sealed.pop("value")
        if kind == "basic" and ":" not in value:
            # The message never repeats the value.
            raise InvalidInput(
                "a basic secret's value is user:password (a colon between them)",
                details=[Problem("/value", "format", "user:password")],
            )
        sealed["value_encrypted"] = ctx.runtime.vault.encrypt(value)
    return sealed


def create(ctx: Ctx, fields: dict[str, Any]) -> AbilitySecret:
    fields.setdefault("type", "plain")
    crud.check_alias_free(ctx, AbilitySecret, fields.get("alias"))
    return crud.insert(ctx, AbilitySecret, _seal(ctx, fields, fields["type"]))


def get(ctx: Ctx, ref: str) -> AbilitySecret:
    return crud.get_owned(ctx, AbilitySecret, ref, field="secretId")


def update(ctx: Ctx, ref: str, fields: dict[str, Any]) -> AbilitySecret:
    secret = get(ctx, ref)
    crud.check_alias_free(ctx, AbilitySecret, fields.get("alias"), own_id=secret.id)
    kind = fields.get("type") or secret.type
    if kind == "basic" and "value" not in fields and secret.type != "basic":
        raise InvalidInput(
            "changing a secret to type basic needs its value (user:password) in the same call",
            details=[Problem("/value", "required", "give the value with the new type")],
        )
    crud.update(ctx, secret, _seal(ctx, fields, kind))
    return secret


def delete(ctx: Ctx, ref: str) -> str:
    """Delete a secret no ability links: an ability's instruction may use it as
    ${SECRET_DEFAULT}, which would silently lose its credential."""
    secret = get(ctx, ref)
    users = list(
        ctx.session.scalars(
            select(Ability.id)
            .where(Ability.account_id == ctx.account_id, Ability.linked_secret_id == secret.id)
            .limit(5)
        )
    )
    if users:
        raise Conflict(
            f"secret {secret.id} is linked by abilities {', '.join(users)}: link them to"
            " another secret (linkedSecretId) or delete them first",
            details=[Problem("/secretId", "in_use", "linked by abilities")],
        )
    ctx.session.delete(secret)
    ctx.session.flush()
    return secret.id

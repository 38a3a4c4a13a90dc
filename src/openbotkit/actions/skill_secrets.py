"""Secret actions: ChatBotKit's `/secret`, credentials abilities use to call services.

Not API keys (those are `obk key`, ChatBotKit's tokens). A secret's value goes in through
create and update and never comes out: no output model has a field for it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from openbotkit.actions.base import (
    NOT_BLANK,
    Alias,
    IdOutput,
    Input,
    ListInput,
    ListOutput,
    Meta,
    MetaFilterMixin,
    Resource,
    Visibility,
    no_null_default,
)
from openbotkit.actions.registry import Effect, action
from openbotkit.errors import InvalidInput, Problem
from openbotkit.services import ability_secrets, crud
from openbotkit.services.context import Ctx
from openbotkit.store.tables import AbilitySecret

SecretType = Literal["plain", "bearer", "basic", "template"]
MAX_VALUE = 16_384
Value = Annotated[str, Field(min_length=1, max_length=MAX_VALUE, pattern=NOT_BLANK)]
VALUE_DOC = (
    "The credential; stored encrypted and never returned. basic: user:password. "
    "${SECRET_DEFAULT} becomes: plain/template the value, bearer `Bearer <value>`, "
    "basic `Basic <base64>`."
)


class SecretFields(Input):
    alias: Alias = None
    name: str | None = None
    description: str | None = None
    meta: Meta = None
    blueprint_id: str | None = None
    visibility: Visibility | None = None


class CreateSecretInput(SecretFields):
    type: SecretType = Field("plain", description="How the value is formatted when used.")
    value: Value = Field(description=VALUE_DOC)


class SecretRef(Input):
    secret_id: str = Field(description="Secret id, or @alias.")


class UpdateSecretInput(SecretFields, SecretRef):
    # null is refused for both (a secret always has a type and a value).
    type: SkipJsonSchema[None] | SecretType = Field(None, json_schema_extra=no_null_default)
    value: SkipJsonSchema[None] | Value = Field(
        None, description=VALUE_DOC, json_schema_extra=no_null_default
    )


class ListSecretsInput(ListInput, MetaFilterMixin):
    blueprint_id: str | None = None


class SecretOutput(Resource):
    """A secret without its value."""

    alias: str | None = None
    name: str | None = None
    description: str | None = None
    type: SecretType
    meta: dict[str, object] | None = None
    blueprint_id: str | None = None
    visibility: Visibility | None = None


SECRET_PAGE = ListOutput[SecretOutput]


@action("list_secrets", Effect.READ, "GET /secret/list")
def list_secrets(ctx: Ctx, inp: ListSecretsInput) -> ListOutput[SecretOutput]:
    """List the secrets abilities use (never their values), newest first."""
    rows, cursor = crud.page(ctx, AbilitySecret, inp)
    return SECRET_PAGE(items=rows, cursor=cursor)


@action("fetch_secret", Effect.READ, "GET /secret/{secretId}/fetch")
def fetch_secret(ctx: Ctx, inp: SecretRef) -> SecretOutput:
    """Fetch one secret's name, type and meta (never its value)."""
    return SecretOutput.model_validate(ability_secrets.get(ctx, inp.secret_id))


@action("create_secret", Effect.WRITE, "POST /secret/create")
def create_secret(ctx: Ctx, inp: CreateSecretInput) -> IdOutput:
    """Store a credential for abilities, encrypted; it is never shown again."""
    fields = inp.set_fields()
    fields["type"] = inp.type
    return IdOutput(id=ability_secrets.create(ctx, fields).id)


@action("update_secret", Effect.WRITE, "POST /secret/{secretId}/update", idempotent=True)
def update_secret(ctx: Ctx, inp: UpdateSecretInput) -> IdOutput:
    """Change a secret's fields or replace its value."""
    fields = inp.set_fields(exclude={"secret_id"})
    for name in ("type", "value"):
        if name in fields and fields[name] is None:
            raise InvalidInput(
                f"{name} cannot be null: a secret always has one",
                details=[Problem(f"/{name}", "type", "null is not accepted")],
            )
    return IdOutput(id=ability_secrets.update(ctx, inp.secret_id, fields).id)


@action("delete_secret", Effect.DESTRUCTIVE, "POST /secret/{secretId}/delete")
def delete_secret(ctx: Ctx, inp: SecretRef) -> IdOutput:
    """Delete a secret that no ability links."""
    return IdOutput(id=ability_secrets.delete(ctx, inp.secret_id))

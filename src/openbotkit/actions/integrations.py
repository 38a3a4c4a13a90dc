"""Integration actions: a bot published on Slack, Telegram, Discord, WhatsApp or email.

Every kind has the same six actions at `/integration/{kind}/...` (ChatBotKit's paths and field
names), declared once by `_declare` from the kind's input and output models. Tokens and signing
secrets are write-only: inputs take them, no output has them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, Field, field_validator

from openbotkit.actions.base import (
    Alias,
    IdOutput,
    Input,
    ListInput,
    ListOutput,
    Meta,
    MetaFilterMixin,
    Output,
    Resource,
    Timestamp,
)
from openbotkit.actions.registry import Effect, action
from openbotkit.services import integrations
from openbotkit.services.context import AccountScope, Ctx

_ADDRESS = re.compile(r"^[^@\s<>\"(),;:]+@[^@\s<>\"(),;:]+$")


def _write_only(schema: dict[str, Any]) -> None:
    schema["writeOnly"] = True


SecretValue = Annotated[
    str | None,
    Field(
        description="Write-only: never returned; null removes it.",
        json_schema_extra=_write_only,
    ),
]


class IntegrationFields(Input):
    alias: Alias = None
    name: str | None = None
    description: str | None = None
    meta: Meta = None
    bot_id: str | None = Field(None, description="The bot that answers (id or @alias).")
    blueprint_id: str | None = None
    allow_from: str | None = Field(
        None,
        description="Who may talk to the bot: user or channel ids (addresses for email), one"
        " per line or comma-separated, `*` wildcards; empty lets everyone in. Others are"
        " ignored.",
    )
    session_duration: Annotated[int, Field(ge=0)] | None = Field(
        None,
        description="Milliseconds: a contact's message within this long of their last one"
        " continues their conversation, a later one starts a new one (default one hour).",
    )
    contact_collection: bool | None = Field(
        None, description="Store the people who write as contacts (default true)."
    )


class IntegrationRef(Input):
    integration_id: str


class IntegrationOutput(Resource):
    alias: str | None = None
    name: str | None = None
    description: str | None = None
    meta: dict[str, object] | None = None
    bot_id: str | None = None
    blueprint_id: str | None = None
    allow_from: str | None = None
    session_duration: int | None = None
    contact_collection: bool | None = None
    last_error: str | None = Field(
        None, description="The last failure to answer or set up, for its owner to see."
    )
    last_error_at: Timestamp | None = None


class ListIntegrationsInput(ListInput, MetaFilterMixin):
    pass


class SetupOutput(Output):
    id: str
    kind: str
    ready: bool = Field(
        description="Configured, checked, and run by this installation: messages get answers."
    )
    runtime: bool = Field(description="This installation answers this kind of integration.")
    missing: list[str] = Field(description="Fields it still needs.")
    message: str = Field(description="What to do next.")
    events_url: str | None = Field(
        None,
        description="Where the channel delivers updates (from OBK_PUBLIC_URL): Slack's Event"
        " Subscriptions Request URL, Discord's Interactions Endpoint URL, WhatsApp's webhook"
        " Callback URL.",
    )
    team_id: str | None = Field(None, description="Slack: the workspace the bot token is for.")
    bot_user_id: str | None = Field(
        None, description="Slack, Discord, Telegram: the bot's user id."
    )
    command_id: str | None = Field(
        None, description="Discord: the slash command `setup` registered (named by `handle`)."
    )
    display_phone_number: str | None = Field(
        None, description="WhatsApp: the business number the access token answers from."
    )
    bot_username: str | None = Field(None, description="Telegram: the bot's @username.")
    mode: str | None = Field(
        None, description="Telegram: `webhook` (OBK_PUBLIC_URL is set) or `polling`."
    )
    webhook_url: str | None = Field(
        None, description="Telegram: where Telegram delivers updates (webhook mode)."
    )
    error: str | None = None


# Per kind: its own fields on top of the common ones.
class SlackFields(IntegrationFields):
    bot_token: SecretValue = None
    signing_secret: SecretValue = None


class TelegramFields(IntegrationFields):
    bot_token: SecretValue = None


class DiscordFields(IntegrationFields):
    app_id: str | None = None
    public_key: str | None = Field(
        None,
        pattern=r"^[0-9a-fA-F]{64}$",
        description="The application's Ed25519 public key (64 hex digits, from its General"
        " Information page).",
    )
    handle: str | None = Field(
        None,
        pattern=r"^/?[-_A-Za-z0-9]{1,32}$",
        description="The slash command that asks the bot (default `ask`): 1 to 32 letters,"
        " digits, - or _, a leading / allowed; Discord shows it in lower case.",
    )
    bot_token: SecretValue = None


class WhatsAppFields(IntegrationFields):
    phone_number_id: str | None = None
    access_token: SecretValue = None
    app_secret: SecretValue = None


class EmailFields(IntegrationFields):
    address: str | None = Field(
        None,
        description="The bot's address: mail to it is answered, and answers come from it.",
        max_length=254,
        # The rule _address checks, stated in the schema (the check's error says it in words).
        json_schema_extra={"pattern": r"^$|^\s*[^@\s<>\"(),;:]+@[^@\s<>\"(),;:]+\s*$"},
    )
    smtp_url: str | None = Field(
        None,
        description="The SMTP server answers are sent through: smtp://host:587 (STARTTLS when"
        " offered) or smtps://host:465.",
        max_length=500,
        # What check_url accepts, stated in the schema (its error says it in words): a scheme, a
        # host and a port, no login.
        json_schema_extra={
            "pattern": r"^$|^\s*smtps?://([^/?#@\s:\[\]]+|\[[0-9a-fA-F:.]+\])(:[0-9]{1,5})?/?\s*$"
        },
    )
    smtp_username: str | None = Field(None, description="The SMTP login (none if empty).")
    smtp_password: SecretValue = None

    @field_validator("address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return value
        value = value.strip().lower()
        if not _ADDRESS.match(value):
            raise ValueError("must be a plain address such as bot@example.org")
        return value

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, value: str | None) -> str | None:
        from openbotkit.channels.email import check_url  # smtplib, ssl: not for plain reads

        return check_url(value.strip()) if value else value


class UpdateSlackInput(SlackFields, IntegrationRef):
    pass


class UpdateTelegramInput(TelegramFields, IntegrationRef):
    pass


class UpdateDiscordInput(DiscordFields, IntegrationRef):
    pass


class UpdateWhatsAppInput(WhatsAppFields, IntegrationRef):
    pass


class UpdateEmailInput(EmailFields, IntegrationRef):
    pass


class SlackOutput(IntegrationOutput):
    pass


class TelegramOutput(IntegrationOutput):
    bot_username: str | None = Field(None, description="The bot's @username (set by setup).")
    webhook_url: str | None = Field(
        None, description="Where Telegram delivers updates; unset: the workers poll."
    )


class DiscordOutput(IntegrationOutput):
    app_id: str | None = None
    public_key: str | None = None
    handle: str | None = None


class WhatsAppOutput(IntegrationOutput):
    phone_number_id: str | None = None
    verify_token: str | None = Field(
        None, description="Paste into Meta's webhook configuration (made by the server)."
    )


class EmailOutput(IntegrationOutput):
    address: str | None = None
    smtp_url: str | None = None
    smtp_username: str | None = None


# handler, name, effect, route, input, output, purpose, extensions
Declared = tuple[
    Callable[..., Any], str, Effect, str, type[BaseModel], type[BaseModel], str, dict[str, Any]
]


def _declare(
    kind: str,
    label: str,
    fields: type[IntegrationFields],
    update: type[IntegrationRef],
    output: type[IntegrationOutput],
) -> None:
    """The six actions of one kind, at `/integration/{kind}/...`."""
    base = f"/integration/{kind}"
    page_type = ListOutput[output]  # type: ignore[valid-type]

    def create(ctx: Ctx, inp: IntegrationFields) -> IdOutput:
        return IdOutput(id=integrations.create(ctx, kind, inp.set_fields()).id)

    def list_(ctx: Ctx, inp: ListIntegrationsInput) -> Any:
        rows, cursor = integrations.page(ctx, kind, inp)
        return page_type(items=rows, cursor=cursor)

    def fetch(ctx: Ctx, inp: IntegrationRef) -> Any:
        return output.model_validate(integrations.read(ctx, kind, inp.integration_id))

    def update_(ctx: Ctx, inp: IntegrationRef) -> IdOutput:
        fields = inp.set_fields(exclude={"integration_id"})
        return IdOutput(id=integrations.update(ctx, kind, inp.integration_id, fields).id)

    def delete(ctx: Ctx, inp: IntegrationRef) -> IdOutput:
        return IdOutput(id=integrations.delete(ctx, kind, inp.integration_id))

    def setup(scope: AccountScope, inp: IntegrationRef) -> SetupOutput:
        # The channels' clients (httpx, smtplib) load when a setup runs, not with the registry.
        from openbotkit.services import integration_setup

        return SetupOutput.model_validate(integration_setup.setup(scope, kind, inp.integration_id))

    declared: list[Declared] = [
        (
            create,
            f"create_{kind}_integration",
            Effect.WRITE,
            f"POST {base}/create",
            fields,
            IdOutput,
            f"Create a {label} integration: a bot answering on {label}.",
            {},
        ),
        (
            list_,
            f"list_{kind}_integrations",
            Effect.READ,
            f"GET {base}/list",
            ListIntegrationsInput,
            page_type,
            f"List {label} integrations, newest first.",
            {},
        ),
        (
            fetch,
            f"fetch_{kind}_integration",
            Effect.READ,
            f"GET {base}/{{integrationId}}/fetch",
            IntegrationRef,
            output,
            f"Fetch one {label} integration (never its secrets).",
            {},
        ),
        (
            update_,
            f"update_{kind}_integration",
            Effect.WRITE,
            f"POST {base}/{{integrationId}}/update",
            update,
            IdOutput,
            f"Change the given fields of a {label} integration; null clears a field.",
            {"idempotent": True},
        ),
        (
            delete,
            f"delete_{kind}_integration",
            Effect.DESTRUCTIVE,
            f"POST {base}/{{integrationId}}/delete",
            IntegrationRef,
            IdOutput,
            f"Delete a {label} integration; its conversations keep their history.",
            {},
        ),
        (
            setup,
            f"setup_{kind}_integration",
            Effect.WRITE,
            f"POST {base}/{{integrationId}}/setup",
            IntegrationRef,
            SetupOutput,
            f"Check a {label} integration's configuration and say what it still needs.",
            # Slack's, Discord's, WhatsApp's and Telegram's setup call out to check the
            # credentials (Telegram's also sets its webhook), email's logs in to SMTP.
            {
                "idempotent": True,
                "open_world": kind in ("slack", "discord", "whatsapp", "telegram", "email"),
                "own_transactions": True,
            },
        ),
    ]
    for fn, name, effect, route, inp_type, out_type, doc, extensions in declared:
        first = "scope" if fn is setup else "ctx"
        fn.__annotations__ = {
            first: AccountScope if fn is setup else Ctx,
            "inp": inp_type,
            "return": out_type,
        }
        fn.__doc__ = doc
        fn.__name__ = fn.__qualname__ = name
        action(name, effect, route, **extensions)(fn)


_declare("slack", "Slack", SlackFields, UpdateSlackInput, SlackOutput)
_declare("telegram", "Telegram", TelegramFields, UpdateTelegramInput, TelegramOutput)
_declare("discord", "Discord", DiscordFields, UpdateDiscordInput, DiscordOutput)
_declare("whatsapp", "WhatsApp", WhatsAppFields, UpdateWhatsAppInput, WhatsAppOutput)
_declare("email", "email", EmailFields, UpdateEmailInput, EmailOutput)

"""Integrations: a bot published on a chat channel, with the channel's credentials.

Each kind stores its readable settings (a Discord appId, a WhatsApp phoneNumberId) apart from
its secrets (tokens, signing secrets): no output shows a secret, and `setup` reports which are
still missing. Secrets are stored as given, not hashed: answering needs the value.
"""

from __future__ import annotations

import fnmatch
import secrets as token_source
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import update as sql_update

from openbotkit.errors import NotFound, Problem
from openbotkit.ids import now_ms
from openbotkit.services import crud
from openbotkit.services.context import AccountScope, Ctx
from openbotkit.services.crud import PageRequest
from openbotkit.store.tables import Bot, Integration

if TYPE_CHECKING:
    from openbotkit.vault import Vault

REFS = {"bot_id": Bot}
COLUMNS = frozenset(
    {
        "alias",
        "name",
        "description",
        "meta",
        "bot_id",
        "blueprint_id",
        "allow_from",
        "session_duration",
        "contact_collection",
    }
)
# A contact's message within this long of their last one continues their conversation.
DEFAULT_SESSION_MS = 60 * 60 * 1000
ERROR_CHARS = 2000


@dataclass(frozen=True)
class Kind:
    """What a channel stores: readable settings, secrets, the ones it cannot work without,
    and whether this installation runs it yet."""

    name: str
    settings: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    runtime: bool = False
    generated: dict[str, int] = field(default_factory=dict)


KINDS: dict[str, Kind] = {
    "slack": Kind(
        "slack",
        secrets=("bot_token", "signing_secret"),
        required=("bot_id", "bot_token", "signing_secret"),
        runtime=True,
    ),
    "telegram": Kind(
        "telegram", secrets=("bot_token",), required=("bot_id", "bot_token"), runtime=True
    ),
    "discord": Kind(
        "discord",
        settings=("app_id", "public_key", "handle"),
        secrets=("bot_token",),
        required=("bot_id", "app_id", "public_key", "bot_token"),
        runtime=True,
    ),
    "whatsapp": Kind(
        "whatsapp",
        settings=("phone_number_id", "verify_token"),
        secrets=("access_token", "app_secret"),
        required=("bot_id", "phone_number_id", "access_token", "app_secret"),
        # What Meta's webhook handshake echoes: made here, shown to paste into Meta's console.
        generated={"verify_token": 24},
        runtime=True,
    ),
    "email": Kind(
        "email",
        settings=("address", "smtp_url", "smtp_username"),
        secrets=("smtp_password",),
        required=("bot_id", "address", "smtp_url"),
        runtime=True,
    ),
}


def _split(
    kind: Kind, fields: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """An input's fields as (columns, settings, secrets)."""
    columns = {k: v for k, v in fields.items() if k in COLUMNS}
    settings = {k: v for k, v in fields.items() if k in kind.settings}
    secrets = {k: v for k, v in fields.items() if k in kind.secrets}
    return columns, settings, secrets


def _merge(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """Given values replace, null removes, the rest stay."""
    merged = dict(old or {})
    for key, value in new.items():
        if value is None or value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _sealed(vault: Vault, secrets: dict[str, Any]) -> dict[str, Any]:
    """Secrets encrypted with the installation's key (vault.py); None and "" stay, to remove."""
    return {
        k: vault.encrypt(str(v)).decode() if v not in (None, "") else v for k, v in secrets.items()
    }


def create(ctx: Ctx, kind_name: str, fields: dict[str, Any]) -> Integration:
    kind = KINDS[kind_name]
    columns, settings, secrets = _split(kind, fields)
    secrets = _sealed(ctx.runtime.vault, secrets)
    crud.resolve_refs(ctx, columns, REFS)
    crud.check_alias_free(ctx, Integration, columns.get("alias"))
    for name, size in kind.generated.items():
        settings.setdefault(name, token_source.token_urlsafe(size))
    return crud.insert(
        ctx,
        Integration,
        {
            **columns,
            "kind": kind.name,
            "settings": _merge(None, settings),
            "secrets": _merge(None, secrets),
        },
    )


def get(ctx: Ctx, kind_name: str, ref: str) -> Integration:
    """The caller's integration of this kind (one of another kind is not found here)."""
    row = crud.get_owned(ctx, Integration, ref, field="integrationId")
    if row.kind != kind_name:
        msg = f"{kind_name} integration {ref!r} not found (field integrationId)"
        raise NotFound(msg, details=[Problem("/integrationId", "exists", msg)])
    return row


def view(row: Integration | dict[str, Any]) -> dict[str, Any]:
    """An integration as outputs show it: its columns and settings, never its secrets."""
    values = dict(row) if isinstance(row, dict) else {c: getattr(row, c) for c in _COLUMN_NAMES}
    settings = values.pop("settings", None) or {}
    values.pop("secrets", None)
    return {**settings, **values}


_COLUMN_NAMES = tuple(c.name for c in Integration.__table__.columns)


def read(ctx: Ctx, kind_name: str, ref: str) -> dict[str, Any]:
    return view(get(ctx, kind_name, ref))


def page(ctx: Ctx, kind_name: str, request: PageRequest) -> tuple[list[dict[str, Any]], str]:
    rows, cursor = crud.page(ctx, Integration, request, equal={"kind": kind_name})
    return [view(r) for r in rows], cursor


def update(ctx: Ctx, kind_name: str, ref: str, fields: dict[str, Any]) -> Integration:
    row = get(ctx, kind_name, ref)
    kind = KINDS[kind_name]
    columns, settings, secrets = _split(kind, fields)
    secrets = _sealed(ctx.runtime.vault, secrets)
    crud.resolve_refs(ctx, columns, REFS)
    crud.check_alias_free(ctx, Integration, columns.get("alias"), own_id=row.id)
    changes: dict[str, Any] = dict(columns)
    if settings:
        changes["settings"] = _merge(row.settings, settings)
    if secrets:
        changes["secrets"] = _merge(row.secrets, secrets)
    crud.update(ctx, row, changes)
    return row


def delete(ctx: Ctx, kind_name: str, ref: str) -> str:
    """Delete an integration; the conversations it started stay, with their history."""
    row = get(ctx, kind_name, ref)
    ctx.session.delete(row)
    ctx.session.flush()
    return row.id


def secret(vault: Vault, row: Integration, name: str) -> str | None:
    """A secret's value, decrypted (None when it is not set)."""
    value = (row.secrets or {}).get(name)
    if not value:
        return None
    return vault.decrypt(str(value).encode(), secret_id=f"{row.id}.{name}")


def session_ms(row: Integration) -> int:
    return DEFAULT_SESSION_MS if row.session_duration is None else int(row.session_duration)


def allowed(row: Integration, *names: str) -> bool:
    """Whether a sender passes `allowFrom`: empty lets everyone in; otherwise one of `names`
    (a user id, a channel id, an address) must match one of its entries, which are separated
    by new lines or commas and may use `*` and `?` wildcards."""
    patterns = [p.strip() for p in (row.allow_from or "").replace(",", "\n").splitlines()]
    patterns = [p for p in patterns if p]
    if not patterns:
        return True
    return any(fnmatch.fnmatchcase(n, p) for n in names if n for p in patterns)


def report_error(ctx: Ctx, integration_id: str, error: str | None) -> None:
    """Record (or with None, keep) the integration's last error, for its owner to see."""
    if error is None:
        return
    ctx.session.execute(
        sql_update(Integration)
        .where(Integration.id == integration_id)
        .values(last_error=error[:ERROR_CHARS], last_error_at=now_ms())
    )


# The last segment of the address each channel delivers to (server/channels.py).
ENDPOINTS = {"slack": "event", "discord": "interaction", "whatsapp": "webhook"}


def events_url(ctx: Ctx | AccountScope, row: Integration) -> str | None:
    """Where the channel sends this integration's updates, if this server has a public
    address."""
    base = ctx.settings.public_url
    if not base:
        return None
    return f"{base.rstrip('/')}/v1/integration/{row.kind}/{row.id}/{ENDPOINTS[row.kind]}"


def setup(scope: AccountScope, kind_name: str, ref: str) -> dict[str, Any]:
    """Check what the integration needs and, where the channel has one, its credentials.

    Slack: the bot token is checked with `auth.test` and the Events URL to paste into the Slack
    app is given (from OBK_PUBLIC_URL). Telegram: the token is checked with getMe, and the
    webhook registered (with OBK_PUBLIC_URL) or deleted (without: the workers poll). Discord: the
    bot token is checked and the slash command registered. WhatsApp: the access token is checked
    against the phone number id. Email: the SMTP login is tried, and whether this server listens
    for mail (OBK_EMAIL_LISTEN) is said. Kinds this installation does not run yet report their
    configuration only. A failed check is
    also kept as the integration's lastError.
    """
    from openbotkit.channels import slack  # httpx: not for the CLI's plain reads

    kind = KINDS[kind_name]
    with scope.transaction(write=False) as ctx:
        row = get(ctx, kind_name, ref)
        ctx.session.expunge(row)
    present = {**(row.settings or {}), **(row.secrets or {}), "bot_id": row.bot_id}
    missing = [_camel(name) for name in kind.required if not present.get(name)]
    out: dict[str, Any] = {"id": row.id, "kind": kind.name, "runtime": kind.runtime}
    out["missing"] = missing
    error = None
    receiving = True
    if kind.name == "slack":
        url = events_url(scope, row)
        out["events_url"] = url
        token = secret(scope.runtime.vault, row, "bot_token")
        if token:
            try:
                who = slack.auth_test(scope.settings.slack_api_url, token)
                out["team_id"] = who.get("team_id")
                out["bot_user_id"] = who.get("user_id")
            except slack.SlackError as exc:
                error = f"the bot token was refused: {exc}"
        if url is None:
            out["message"] = (
                "set OBK_PUBLIC_URL to the address Slack can reach this server at (a tunnel "
                "will do), then paste the Events URL into the Slack app's Event Subscriptions"
            )
        else:
            out["message"] = "paste eventsUrl into the Slack app's Event Subscriptions"
    elif kind.name == "telegram":
        from openbotkit.services import telegram

        error = telegram.setup(scope, row, out)
    elif kind.name == "discord":
        error = _setup_discord(scope, row, out)
    elif kind.name == "whatsapp":
        error = _setup_whatsapp(scope, row, out)
    elif kind.name == "email":
        error, receiving = _setup_email(scope, row, out)
    else:
        out["message"] = (
            f"{kind.name} integrations are stored and configured, but this version does not "
            "run them yet: no message will be answered"
        )
    if error:
        out["error"] = error
        out["message"] = error
        with scope.transaction() as ctx:
            report_error(ctx, row.id, error)
    out["ready"] = kind.runtime and receiving and not missing and error is None
    return out


def _setup_discord(scope: AccountScope, row: Integration, out: dict[str, Any]) -> str | None:
    """Check the bot token (`GET /users/@me`) and register the slash command; the error, if
    either fails."""
    from openbotkit.channels import discord

    url = out["events_url"] = events_url(scope, row)
    handle = discord.handle_of(row.settings)
    app_id = str((row.settings or {}).get("app_id") or "")
    token = secret(scope.runtime.vault, row, "bot_token")
    if not discord.COMMAND_NAME.match(handle):
        return (
            f"handle {handle!r} is not a slash command name: 1 to 32 lower-case letters,"
            " digits, - or _"
        )
    if token and app_id:
        base = scope.settings.discord_api_url
        try:
            out["bot_user_id"] = discord.current_user(base, token).get("id")
            out["command_id"] = discord.register_command(base, token, app_id, handle)
        except discord.DiscordError as exc:
            return f"Discord refused the setup: {exc}"
    if url is None:
        out["message"] = (
            "set OBK_PUBLIC_URL to the address Discord can reach this server at (a tunnel will"
            " do), then paste eventsUrl into the application's Interactions Endpoint URL"
        )
    else:
        out["message"] = (
            f"paste eventsUrl into the application's Interactions Endpoint URL; /{handle} asks"
            " the bot"
        )
    return None


def _setup_whatsapp(scope: AccountScope, row: Integration, out: dict[str, Any]) -> str | None:
    """Check the access token against the phone number id; the error, if it fails."""
    from openbotkit.channels import whatsapp

    url = out["events_url"] = events_url(scope, row)
    number = str((row.settings or {}).get("phone_number_id") or "")
    token = secret(scope.runtime.vault, row, "access_token")
    if token and number:
        try:
            phone = whatsapp.phone_number(scope.settings.whatsapp_api_url, token, number)
        except whatsapp.WhatsAppError as exc:
            return f"the access token was refused for phoneNumberId {number}: {exc}"
        out["display_phone_number"] = phone.get("display_phone_number")
    verify = (row.settings or {}).get("verify_token")
    if url is None:
        out["message"] = (
            "set OBK_PUBLIC_URL to the address Meta can reach this server at (a tunnel will"
            " do), then paste eventsUrl and verifyToken into the app's WhatsApp webhook"
            " configuration and subscribe to messages"
        )
    else:
        out["message"] = (
            f"paste eventsUrl as the Callback URL and {verify} as the Verify token in the app's"
            " WhatsApp configuration, and subscribe to the messages field"
        )
    return None


def _setup_email(
    scope: AccountScope, row: Integration, out: dict[str, Any]
) -> tuple[str | None, bool]:
    """Email: log in to the SMTP server answers go through, and say where mail must arrive.
    Returns the failed check (or None) and whether this server receives mail at all."""
    from openbotkit.channels import email as email_channel

    settings = row.settings or {}
    listen = scope.settings.email_listen
    address = settings.get("address") or "the bot's address"
    if listen is None:
        out["message"] = (
            "set OBK_EMAIL_LISTEN (such as 0.0.0.0:25) so obk serve receives mail, then point "
            f"the MX record of {address}'s domain (or a forwarding rule) at this server"
        )
    else:
        out["message"] = (
            f"obk serve receives mail on {listen}: point the MX record of {address}'s domain "
            "(or a forwarding rule or relay) at it"
        )
    if not settings.get("smtp_url"):
        return None, listen is not None
    server = email_channel.SmtpServer(
        url=str(settings["smtp_url"]),
        username=str(settings.get("smtp_username") or ""),
        password=secret(scope.runtime.vault, row, "smtp_password") or "",
    )
    try:
        email_channel.check_login(server)
    except email_channel.SmtpError as exc:
        return f"the SMTP server refused: {exc}", listen is not None
    return None, listen is not None


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)

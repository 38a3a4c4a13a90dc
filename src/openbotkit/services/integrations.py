"""Integrations: a bot published on a chat channel, with the channel's credentials.

Each kind stores its readable settings (a Discord appId, a WhatsApp phoneNumberId) apart from
its secrets (tokens, signing secrets): no output shows a secret, and `setup`
(services/integration_setup.py) reports which are still missing. Secrets are stored as given,
not hashed: answering needs the value.
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


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)

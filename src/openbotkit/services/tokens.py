"""The acting account's own API keys (the registry's token actions; the console's Keys page).

`services/secrets.py` holds the operator's functions (`obk secret`, any account, from the machine
itself); these act on the caller's account only, and a key of another account is `not_found`
like any other resource. Minting or revoking keys is refused to a key that may do less than
everything, or a limited key could make itself an unlimited one.
"""

from __future__ import annotations

import secrets as pysecrets

from sqlalchemy import select

from openbotkit.errors import NotAuthorized, NotFound
from openbotkit.ids import new_id, now_ms
from openbotkit.services.context import Ctx
from openbotkit.services.secrets import TOKEN_PREFIX, _hash
from openbotkit.store.tables import Secret


def require_full_key(ctx: Ctx, action: str) -> None:
    """Only a key without limits manages keys (the CLI and the Python API have no key)."""
    key = getattr(ctx, "key", None)
    if key is not None and not key.unrestricted:
        raise NotAuthorized(f"{action} needs a key without scope limits; this key is limited")


def create(ctx: Ctx, name: str | None) -> tuple[Secret, str]:
    """A new key of the acting account; the token is returned this once."""
    require_full_key(ctx, "create_token")
    token = TOKEN_PREFIX + pysecrets.token_urlsafe(32)
    row = Secret(
        id=new_id(),
        account_id=ctx.account_id,
        name=name,
        token_hash=_hash(token),
        prefix=token[:10],
        created_at=now_ms(),
    )
    ctx.session.add(row)
    return row, token


def list_all(ctx: Ctx) -> list[Secret]:
    require_full_key(ctx, "list_tokens")
    query = select(Secret).where(Secret.account_id == ctx.account_id)
    return list(ctx.session.scalars(query.order_by(Secret.created_at.desc(), Secret.id.desc())))


def revoke(ctx: Ctx, secret_id: str) -> Secret:
    """Revoke one of the acting account's keys (again is a no-op); the cache forgets it now."""
    require_full_key(ctx, "revoke_token")
    row = ctx.session.get(Secret, secret_id)
    if row is None or row.account_id != ctx.account_id:
        raise NotFound(f"no key {secret_id!r}")
    if row.revoked_at is None:
        row.revoked_at = now_ms()
    ctx.runtime.auth_cache.pop(row.token_hash, None)
    return row

"""The acting account's own API keys (the registry's token actions; the console's Keys page).

`services/secrets.py` holds the operator's functions (`obk key`, any account, from the machine
itself); these act on the caller's account only, and a key of another account is `not_found`
like any other resource. Minting or revoking keys is refused to a key that may do less than
everything, or a limited key could make itself an unlimited one.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from openbotkit.access import Effect
from openbotkit.errors import NotFound, ScopeMissing
from openbotkit.ids import now_ms
from openbotkit.services import secrets
from openbotkit.services.context import Ctx
from openbotkit.store.tables import Secret


def require_full_key(ctx: Ctx, action: str) -> None:
    """Only a key without limits manages keys (the CLI and the Python API have no key)."""
    if ctx.key is not None and not ctx.key.unrestricted:
        raise ScopeMissing(
            f"{action} needs a key without limits (scope destructive, no bot or dataset limits);"
            f" this key has {ctx.key.describe()}"
        )


def create(
    ctx: Ctx,
    name: str | None,
    *,
    scope: Effect = Effect.DESTRUCTIVE,
    bots: Sequence[str] | None = None,
    datasets: Sequence[str] | None = None,
    budget_tokens: int | None = None,
    expires_in_s: int | None = None,
) -> tuple[Secret, str]:
    """A new key of the acting account, limited as asked; the token is returned this once."""
    require_full_key(ctx, "create_token")
    return secrets.create_key(
        ctx,
        name,
        scope=scope,
        bots=bots,
        datasets=datasets,
        budget_tokens=budget_tokens,
        expires_at=now_ms() + expires_in_s * 1000 if expires_in_s is not None else None,
    )


def list_all(ctx: Ctx) -> list[tuple[Secret, int]]:
    """The account's keys, newest first, each with the tokens spent through it."""
    require_full_key(ctx, "list_tokens")
    query = select(Secret).where(Secret.account_id == ctx.account_id)
    rows = list(ctx.session.scalars(query.order_by(Secret.created_at.desc(), Secret.id.desc())))
    used = secrets.tokens_used(ctx.session, [r.id for r in rows])
    return [(r, used.get(r.id, 0)) for r in rows]


def revoke(ctx: Ctx, secret_id: str) -> Secret:
    """Revoke one of the acting account's keys (again is a no-op); the cache forgets it now."""
    require_full_key(ctx, "revoke_token")
    row = ctx.session.get(Secret, secret_id)
    if row is None or row.account_id != ctx.account_id:
        raise NotFound(f"no key {secret_id!r}")
    if row.revoked_at is None:
        row.revoked_at = now_ms()
    secrets.forget(ctx.runtime, row)
    return row

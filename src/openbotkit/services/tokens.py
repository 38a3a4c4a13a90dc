"""The acting account's own API keys (the registry's token actions; the console's Keys page).

`services/secrets.py` holds the operator's functions (`obk key`, any account, from the machine
itself); these act on the caller's account only, and a key of another account is `not_found`
like any other resource. Minting or revoking keys is refused to a key that may do less than
everything, or a limited key could make itself an unlimited one.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from openbotkit.access import Effect, Key
from openbotkit.errors import NotFound, Problem, ScopeMissing
from openbotkit.ids import now_ms
from openbotkit.services import keys, secrets, usage
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
    """A new key of the acting account, limited as asked; the token is returned this once.

    A key makes keys no wider than itself (`_check_within`); the budget it gives the new key
    is taken from its own (usage.grant)."""
    expires_at = now_ms() + expires_in_s * 1000 if expires_in_s is not None else None
    if ctx.key is not None:
        limits = Key(
            id="",
            account_id=ctx.account_id,
            scope=scope,
            bots=None if bots is None and datasets is None else frozenset(bots or ()),
            datasets=None if bots is None and datasets is None else frozenset(datasets or ()),
            budget_tokens=budget_tokens,
            expires_at=expires_at,
        )
        _check_within(ctx, ctx.key, limits, bots or (), datasets or ())
    row, token = secrets.create_key(
        ctx,
        name,
        scope=scope,
        bots=bots,
        datasets=datasets,
        budget_tokens=budget_tokens,
        expires_at=expires_at,
    )
    if ctx.key is not None and budget_tokens is not None:
        usage.grant(ctx, budget_tokens)
    return row, token


def _check_within(
    ctx: Ctx, maker: Key, made: Key, bots: Sequence[str], datasets: Sequence[str]
) -> None:
    """ScopeMissing naming each field in which the new key (`made`, its bots and datasets
    as given: ids or @aliases) would be wider than the key that makes it: scope, bots and
    datasets, budget, expiry. How much budget is left is usage.grant's check."""
    problems: list[tuple[Problem, str]] = []
    if not maker.scope.includes(made.scope):
        problems.append(
            (
                Problem("/scope", "maximum", f"must be {maker.scope.value} or lower"),
                f"scope {made.scope.value} is wider than this key's {maker.scope.value}",
            )
        )
    if maker.limited and not made.limited:
        problems.append(
            (
                Problem("/bots", "required", "this key is limited to bots and datasets"),
                f"this key is limited ({maker.describe()}): a key it makes must list bots or"
                " datasets, within its own",
            )
        )
    elif maker.limited:
        # Each ref as the maker reaches it; an unknown id is simply out of reach (no oracle).
        for field, kind, refs in (("bots", "bot", bots), ("datasets", "dataset", datasets)):
            for i, ref in enumerate(refs):
                if not keys.reaches(ctx, maker, kind, ref):
                    problems.append(
                        (
                            Problem(f"/{field}/{i}", "subset", f"not one of this key's {field}"),
                            f"{kind} {ref} is outside this key's limits ({maker.describe()})",
                        )
                    )
    if maker.budget_tokens is not None and made.budget_tokens is None:
        problems.append(
            (
                Problem("/budgetTokens", "required", "this key has a token budget"),
                "this key has a token budget: a key it makes needs budgetTokens (taken from"
                " what this key has left)",
            )
        )
    if maker.expires_at is not None and (
        made.expires_at is None or made.expires_at > maker.expires_at
    ):
        left_s = max(0, (maker.expires_at - now_ms()) // 1000)
        problems.append(
            (
                Problem("/expiresIn", "maximum", f"must be given and <= {left_s}"),
                f"this key expires in {left_s} s: a key it makes must expire no later"
                f" (expiresIn <= {left_s})",
            )
        )
    if problems:
        raise ScopeMissing(
            "create_token would make a key wider than this one: "
            + "; ".join(reason for _, reason in problems),
            details=[p for p, _ in problems],
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

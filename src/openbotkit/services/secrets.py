"""API secrets: random tokens shown once, stored as SHA-256 hashes, compared in constant time.

Each secret is a key with limits fixed at creation (services/keys.py says what they mean).
These are operator actions (they choose the account), so they take the Runtime, not a Ctx.
"""

from __future__ import annotations

import hmac
import secrets as pysecrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from openbotkit.access import Effect, Key, token_hash
from openbotkit.errors import CredentialExpired, InvalidInput, NotFound, Problem
from openbotkit.ids import new_id, now_ms
from openbotkit.runtime import Runtime
from openbotkit.services import crud, sessions
from openbotkit.services.accounts import ensure_account
from openbotkit.services.context import Ctx
from openbotkit.store.tables import Account, Bot, Dataset, Secret, UsageEvent

TOKEN_PREFIX = "obk_"
# Secret kinds (tables.Secret.kind): an API key, a console session, a console sign-in link.
KEY, CONSOLE, SIGNIN = "key", "console", "signin"


@dataclass(frozen=True)
class SecretInfo:
    id: str
    account: str
    name: str | None
    prefix: str
    created_at: int
    revoked_at: int | None
    scope: Effect = Effect.DESTRUCTIVE
    bots: list[str] | None = None
    datasets: list[str] | None = None
    budget_tokens: int | None = None
    expires_at: int | None = None
    tokens_used: int = 0

    def status(self, now: int | None = None) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or now_ms()):
            return "expired"
        return "active"


def create_secret(
    runtime: Runtime,
    account: str,
    name: str | None = None,
    *,
    scope: Effect = Effect.DESTRUCTIVE,
    bots: Sequence[str] | None = None,
    datasets: Sequence[str] | None = None,
    budget_tokens: int | None = None,
    expires_at: int | None = None,
) -> tuple[SecretInfo, str]:
    """Create a secret for `account` (created if new); returns its info and the token, once."""
    account_id = ensure_account(runtime.store, account)
    with runtime.store.session() as session:
        row, token = create_key(
            Ctx(runtime, session, account_id),
            name,
            scope=scope,
            bots=bots,
            datasets=datasets,
            budget_tokens=budget_tokens,
            expires_at=expires_at,
        )
        info = _info(row, account, 0)
    return info, token


def create_key(
    ctx: Ctx,
    name: str | None = None,
    *,
    scope: Effect = Effect.DESTRUCTIVE,
    bots: Sequence[str] | None = None,
    datasets: Sequence[str] | None = None,
    budget_tokens: int | None = None,
    expires_at: int | None = None,
    kind: str = KEY,
) -> tuple[Secret, str]:
    """A new secret of the acting account, in its transaction; the token is returned once.

    `bots` and `datasets` (ids or @aliases of the account's own) limit what the key reaches;
    giving either limits it to exactly those. An unknown one is not_found: a key is never
    made for something that does not exist.
    """
    if budget_tokens is not None and budget_tokens < 1:
        raise InvalidInput(
            "the token budget must be at least 1",
            details=[Problem("/budgetTokens", "minimum", "must be >= 1")],
        )
    if expires_at is not None and expires_at <= now_ms():
        raise InvalidInput(
            "the expiry must be in the future",
            details=[Problem("/expiresIn", "minimum", "must be > 0")],
        )
    token = TOKEN_PREFIX + pysecrets.token_urlsafe(32)
    limited = bots is not None or datasets is not None
    bot_ids = [crud.get_owned(ctx, Bot, b, field="bot").id for b in bots or ()]
    dataset_ids = [crud.get_owned(ctx, Dataset, d, field="dataset").id for d in datasets or ()]
    row = Secret(
        id=new_id(),
        account_id=ctx.account_id,
        name=name,
        token_hash=token_hash(token),
        prefix=token[:10],
        created_at=now_ms(),
        scope=scope.value,
        bots=sorted(set(bot_ids)) if limited else None,
        datasets=sorted(set(dataset_ids)) if limited else None,
        budget_tokens=budget_tokens,
        expires_at=expires_at,
        kind=kind,
    )
    ctx.session.add(row)
    return row, token


def _info(row: Secret, account: str, tokens_used: int) -> SecretInfo:
    return SecretInfo(
        row.id,
        account,
        row.name,
        row.prefix,
        row.created_at,
        row.revoked_at,
        Effect(row.scope),
        row.bots,
        row.datasets,
        row.budget_tokens,
        row.expires_at,
        tokens_used,
    )


def _key(row: Secret) -> Key:
    limited = row.bots is not None or row.datasets is not None
    return Key(
        id=row.id,
        account_id=row.account_id,
        scope=Effect(row.scope),
        bots=frozenset(row.bots or ()) if limited else None,
        datasets=frozenset(row.datasets or ()) if limited else None,
        budget_tokens=row.budget_tokens,
        expires_at=row.expires_at,
    )


AUTH_CACHE_S = 5.0


def cached_key(runtime: Runtime, token: str) -> Key | None:
    """The key of a secret seen in the last AUTH_CACHE_S seconds (no database trip)."""
    hit = runtime.auth_cache.get(token_hash(token))
    return hit[0] if hit is not None and hit[1] > time.monotonic() else None


def key_for_token(runtime: Runtime, token: str) -> Key | None:
    """The key of a secret that is not revoked, or None. Expiry is for `check_live`.

    Answers are remembered for AUTH_CACHE_S seconds per process (a lookup per request is the
    largest cost of a small API call), so a revocation takes effect within that time. A key's
    limits never change after creation, so a remembered key is never stale in what it may do;
    its expiry is checked against the clock on every request.
    """
    found = cached_key(runtime, token)
    if found is not None:
        return found
    digest = token_hash(token)
    cache = runtime.auth_cache
    with runtime.store.session(write=False) as session:
        if token.startswith(sessions.SESSION_PREFIX):
            found = sessions.key_for_session(session, digest)
            if found is None:
                return None
            key = found
        else:
            row = session.scalar(
                select(Secret).where(
                    Secret.token_hash == digest,
                    Secret.revoked_at.is_(None),
                    # A sign-in link authenticates nothing: it is only traded for a session.
                    Secret.kind != SIGNIN,
                )
            )
            # The lookup is by hash; the compare keeps the final check constant-time all the
            # same.
            if row is None or not hmac.compare_digest(row.token_hash, digest):
                return None
            key = _key(row)
    if len(cache) > 10_000:
        cache.clear()
    cache[digest] = (key, time.monotonic() + AUTH_CACHE_S)
    return key


def forget(runtime: Runtime, row: Secret) -> None:
    """Drop a revoked secret from this process's cache, with the conversation sessions it
    opened (they act as it: services/sessions.py), so the revocation holds here at once."""
    cache = runtime.auth_cache
    cache.pop(row.token_hash, None)
    for digest in [d for d, (key, _) in list(cache.items()) if key.id == row.id]:
        cache.pop(digest, None)


def check_live(key: Key, now: int | None = None) -> Key:
    """The key itself, or CredentialExpired once its lifetime has ended."""
    if key.expires_at is not None and key.expires_at <= (now or now_ms()):
        if key.conversation is not None:
            raise CredentialExpired(
                "this conversation session expired; start a new conversation and open a"
                " session for it"
            )
        raise CredentialExpired("this secret expired; create a new one with `obk key create`")
    return key


def list_secrets(runtime: Runtime, account: str | None = None) -> list[SecretInfo]:
    """Every secret (never a token), with the tokens completions spent through it."""
    query = select(Secret, Account.name).join(Account, Account.id == Secret.account_id)
    if account:
        query = query.where(Account.name == account)
    with runtime.store.session(write=False) as session:
        rows = session.execute(query.order_by(Secret.created_at)).all()
        used = tokens_used(session, [s.id for s, _ in rows])
        return [_info(s, acct, used.get(s.id, 0)) for s, acct in rows]


def tokens_used(session: Session, secret_ids: Sequence[str]) -> dict[str, int]:
    """Tokens completions spent through each of these secrets (absent: none)."""
    rows = session.execute(
        select(UsageEvent.secret_id, func.sum(UsageEvent.amount))
        .where(UsageEvent.secret_id.in_(list(secret_ids)), UsageEvent.metric == "tokens")
        .group_by(UsageEvent.secret_id)
    ).all()
    return {str(sid): int(total or 0) for sid, total in rows}


def revoke(runtime: Runtime, secret_id: str) -> None:
    with runtime.store.session() as session:
        row = session.get(Secret, secret_id)
        if row is None:
            raise NotFound(f"no secret {secret_id!r}; see `obk key list`")
        if row.revoked_at is None:
            row.revoked_at = now_ms()
        forget(runtime, row)

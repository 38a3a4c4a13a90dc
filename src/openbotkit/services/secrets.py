"""API secrets: random tokens shown once, stored as SHA-256 hashes, compared in constant time.

These are operator actions (they choose the account), so they take the Runtime, not a Ctx.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets as pysecrets
import time
from dataclasses import dataclass

from sqlalchemy import select

from openbotkit.errors import NotFound
from openbotkit.ids import new_id, now_ms
from openbotkit.runtime import Runtime
from openbotkit.services.accounts import ensure_account
from openbotkit.store.tables import Account, Secret

TOKEN_PREFIX = "obk_"


@dataclass(frozen=True)
class SecretInfo:
    id: str
    account: str
    name: str | None
    prefix: str
    created_at: int
    revoked_at: int | None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_secret(
    runtime: Runtime, account: str, name: str | None = None
) -> tuple[SecretInfo, str]:
    """Create a secret for `account` (created if new); returns its info and the token, once."""
    account_id = ensure_account(runtime.store, account)
    token = TOKEN_PREFIX + pysecrets.token_urlsafe(32)
    row = Secret(
        id=new_id(),
        account_id=account_id,
        name=name,
        token_hash=_hash(token),
        prefix=token[:10],
        created_at=now_ms(),
    )
    with runtime.store.session() as session:
        session.add(row)
    return SecretInfo(row.id, account, name, row.prefix, row.created_at, None), token


AUTH_CACHE_S = 5.0


def cached_account(runtime: Runtime, token: str) -> str | None:
    """The account of a secret seen in the last AUTH_CACHE_S seconds (no database trip)."""
    hit = runtime.auth_cache.get(_hash(token))
    return hit[0] if hit is not None and hit[1] > time.monotonic() else None


def account_for_token(runtime: Runtime, token: str) -> str | None:
    """The account a live secret belongs to, or None.

    Answers are remembered for AUTH_CACHE_S seconds per process (a lookup per request is the
    largest cost of a small API call), so a revocation takes effect within that time.
    """
    found = cached_account(runtime, token)
    if found is not None:
        return found
    digest = _hash(token)
    cache = runtime.auth_cache
    with runtime.store.session(write=False) as session:
        row = session.execute(
            select(Secret.token_hash, Secret.account_id).where(
                Secret.token_hash == digest, Secret.revoked_at.is_(None)
            )
        ).first()
    # The lookup is by hash; the compare keeps the final check constant-time all the same.
    if row is None or not hmac.compare_digest(row[0], digest):
        return None
    if len(cache) > 10_000:
        cache.clear()
    cache[digest] = (str(row[1]), time.monotonic() + AUTH_CACHE_S)
    return str(row[1])


def list_secrets(runtime: Runtime, account: str | None = None) -> list[SecretInfo]:
    query = select(Secret, Account.name).join(Account, Account.id == Secret.account_id)
    if account:
        query = query.where(Account.name == account)
    with runtime.store.session(write=False) as session:
        rows = session.execute(query.order_by(Secret.created_at)).all()
    return [
        SecretInfo(s.id, acct, s.name, s.prefix, s.created_at, s.revoked_at) for s, acct in rows
    ]


def revoke(runtime: Runtime, secret_id: str) -> None:
    with runtime.store.session() as session:
        row = session.get(Secret, secret_id)
        if row is None:
            raise NotFound(f"no secret {secret_id!r}; see `obk secret list`")
        if row.revoked_at is None:
            row.revoked_at = now_ms()
        runtime.auth_cache.pop(row.token_hash, None)

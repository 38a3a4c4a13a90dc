"""Console sessions and the one-time links that start them.

`obk serve --open` (or `obk key link`) prints a sign-in link: a secret of kind `signin` that
authenticates nothing by itself, lives SIGNIN_LINK_S seconds, and is traded once (`redeem`) for
a console session: a secret of kind `console` that expires after OBK_CONSOLE_SESSION_S seconds
and that sign-out revokes. Only the operator's machine makes links (there is no API for it), so
a page cannot sign a visitor in to someone else's account by handing it a link of its own
making (login CSRF): a key pasted in a link is not a link.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update

from openbotkit.access import token_hash
from openbotkit.errors import NotAuthenticated
from openbotkit.ids import now_ms
from openbotkit.runtime import Runtime
from openbotkit.services import secrets
from openbotkit.services.accounts import ensure_account
from openbotkit.services.context import Ctx
from openbotkit.store.tables import Secret

SIGNIN_LINK_S = 600
LINK_NAME = "console sign-in link"
SESSION_NAME = "console session"


@dataclass(frozen=True)
class ConsoleSession:
    id: str
    token: str
    expires_at: int


def create_link(runtime: Runtime, account: str) -> tuple[str, str]:
    """A sign-in link's secret for `account`: (its id, its token), good once for
    SIGNIN_LINK_S seconds. The link is `#signin=ID.TOKEN` (server/console.py)."""
    account_id = ensure_account(runtime.store, account)
    with runtime.store.session() as session:
        row, token = secrets.create_key(
            Ctx(runtime, session, account_id),
            LINK_NAME,
            expires_at=now_ms() + SIGNIN_LINK_S * 1000,
            kind=secrets.SIGNIN,
        )
        return row.id, token


def redeem(runtime: Runtime, link_id: str, token: str) -> ConsoleSession:
    """Trade a sign-in link for a new console session; the link is spent in the same
    transaction (a conditional update: of two tabs opening it at once, one signs in).
    Anything but a live, unspent link of the operator's making is NotAuthenticated."""
    refused = NotAuthenticated(
        "this sign-in link is not valid: links work once, for"
        f" {SIGNIN_LINK_S // 60} minutes; make a new one with `obk key link`"
    )
    now = now_ms()
    with runtime.store.session() as session:
        row = session.scalar(
            select(Secret).where(
                Secret.id == link_id,
                Secret.token_hash == token_hash(token),
                Secret.kind == secrets.SIGNIN,
            )
        )
        if row is None or row.revoked_at is not None or (row.expires_at or 0) <= now:
            raise refused
        spent = session.execute(
            update(Secret)
            .where(Secret.id == row.id, Secret.revoked_at.is_(None))
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
        if getattr(spent, "rowcount", 0) != 1:
            raise refused
        expires_at = now + int(runtime.settings.console_session_s * 1000)
        own, own_token = secrets.create_key(
            Ctx(runtime, session, row.account_id),
            SESSION_NAME,
            expires_at=expires_at,
            kind=secrets.CONSOLE,
        )
        return ConsoleSession(own.id, own_token, expires_at)


def sign_out(runtime: Runtime, token: str) -> bool:
    """Revoke the console session `token` is (True), now and in this process's cache; any
    other secret is left alone (False): signing out of the console never revokes an API key
    the person typed in."""
    digest = token_hash(token)
    with runtime.store.session() as session:
        row = session.scalar(
            select(Secret).where(Secret.token_hash == digest, Secret.kind == secrets.CONSOLE)
        )
        if row is None:
            return False
        if row.revoked_at is None:
            row.revoked_at = now_ms()
        secrets.forget(runtime, row)
    return True

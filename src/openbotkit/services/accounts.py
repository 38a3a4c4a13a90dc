"""Accounts by name: the operator's handle on a tenant (`--account acme`, the local account)."""

from __future__ import annotations

from sqlalchemy import select

from openbotkit.ids import new_id
from openbotkit.store import Store
from openbotkit.store.tables import Account

LOCAL_ACCOUNT = "local"


def ensure_account(store: Store, name: str) -> str:
    """The id of the account called `name`, created if it does not exist yet."""
    with store.session(write=False) as session:
        found = session.scalar(select(Account.id).where(Account.name == name))
    if found:
        return found
    with store.session() as session:
        found = session.scalar(select(Account.id).where(Account.name == name))
        if found:
            return found
        account = Account(id=new_id(), name=name)
        session.add(account)
        return account.id

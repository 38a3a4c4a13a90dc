"""The context every action and service call receives: who is acting, in which transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from openbotkit.settings import Settings

if TYPE_CHECKING:
    from openbotkit.access import Key
    from openbotkit.runtime import Runtime


@dataclass
class Ctx:
    """One action call: the acting account, its open transaction, and the process-wide parts.

    `key` is the API key the call came through (None from the CLI and the Python API): usage is
    counted against it and a completion checks its budget.
    """

    runtime: Runtime
    session: Session
    account_id: str
    key: Key | None = None

    @property
    def settings(self) -> Settings:
        return self.runtime.settings


@dataclass
class AccountScope:
    """What an action that manages its own transactions receives instead of a Ctx.

    Long actions (completions, file syncs) must not hold a write transaction while a model runs:
    on SQLite that would block every other writer. They open short transactions as they go.
    """

    runtime: Runtime
    account_id: str
    key: Key | None = None

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Ctx]:
        with self.runtime.store.session(write=write) as session:
            yield Ctx(self.runtime, session, self.account_id, self.key)

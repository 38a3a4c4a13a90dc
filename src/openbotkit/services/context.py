"""The context every action and service call receives: who is acting, in which transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from openbotkit.settings import Settings

if TYPE_CHECKING:
    from openbotkit.engine import Engine


@dataclass
class Ctx:
    """One action call: the acting account, its open transaction, and the engine's shared parts."""

    engine: Engine
    session: Session
    account_id: str

    @property
    def settings(self) -> Settings:
        return self.engine.settings


@dataclass
class AccountScope:
    """What an action that manages its own transactions receives instead of a Ctx.

    Long actions (completions, file syncs) must not hold a write transaction while a model runs:
    on SQLite that would block every other writer. They open short transactions as they go.
    """

    engine: Engine
    account_id: str

    @property
    def settings(self) -> Settings:
        return self.engine.settings

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Ctx]:
        with self.engine.store.session(write=write) as session:
            yield Ctx(self.engine, session, self.account_id)

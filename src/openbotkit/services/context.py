"""The context every action and service call receives: who is acting, in which transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from openbotkit.settings import Settings
from openbotkit.store.unit import Unit

if TYPE_CHECKING:
    from openbotkit.access import Key
    from openbotkit.runtime import Runtime


class Ctx:
    """One action call: the acting account, its unit of work, and the process-wide parts.

    `unit` runs plain compiled reads (`ctx.unit.rows`); `session` is the ORM Session of the same
    unit, opened on first use, so a read that needs no ORM object never builds one. Given a
    Session instead of a Unit, the call runs in that Session's transaction.
    `key` is the API key the call came through (None from the CLI and the Python API): usage is
    counted against it and a completion checks its budget.
    """

    __slots__ = ("account_id", "key", "runtime", "unit")

    def __init__(
        self,
        runtime: Runtime,
        unit: Unit | Session,
        account_id: str,
        key: Key | None = None,
    ) -> None:
        self.runtime = runtime
        self.unit = unit if isinstance(unit, Unit) else Unit.over(unit)
        self.account_id = account_id
        self.key = key

    @property
    def session(self) -> Session:
        return self.unit.session

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
    # The bots asked on behalf of this one through abilities (services/ability_kinds.py), so
    # bots asking each other stop instead of looping; the completion passes its scope on.
    asking: tuple[str, ...] = ()

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Ctx]:
        with self.runtime.store.unit(write=write) as unit:
            yield Ctx(self.runtime, unit, self.account_id, self.key)

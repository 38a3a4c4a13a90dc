"""The engine: one store and the process-wide parts (models, indexes) behind every surface.

A surface (CLI, server, Python API) builds one Engine from Settings and runs actions through it;
each run is one transaction scoped to one account.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select

from openbotkit.actions.registry import Action, Effect
from openbotkit.errors import InvalidInput, Problem
from openbotkit.ids import new_id
from openbotkit.services.context import AccountScope, Ctx
from openbotkit.settings import Settings
from openbotkit.store import Store
from openbotkit.store.tables import Account

LOCAL_ACCOUNT = "local"


class Engine:
    """Runs actions against the embedded store."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.home.mkdir(parents=True, exist_ok=True)
        self.store = Store(settings.resolved_database_url)
        # Process-wide, lazily built parts (embedder, index, language models) keyed by name.
        self.components: dict[str, Any] = {}

    def run(self, act: Action, inp: BaseModel, *, account_id: str) -> BaseModel:
        """Run one validated action as `account_id`, in one transaction."""
        if act.extensions.get("own_transactions"):
            return act.handler(AccountScope(self, account_id), inp)  # type: ignore[no-any-return]
        write = act.effect_for(inp) is not Effect.READ
        with self.store.session(write=write) as session:
            return act.handler(Ctx(self, session, account_id), inp)  # type: ignore[no-any-return]

    def stream(self, act: Action, inp: BaseModel, *, account_id: str) -> Iterator[dict[str, Any]]:
        """Run a streaming action: its events, `{"type", "data"}`, the last one `result`."""
        produce = act.extensions.get("stream")
        if produce is None:
            raise InvalidInput(
                f"action {act.name} does not stream",
                details=[Problem("", "stream", "not a streaming action")],
            )
        if act.extensions.get("own_transactions"):
            yield from produce(AccountScope(self, account_id), inp)
            return
        write = act.effect_for(inp) is not Effect.READ
        with self.store.session(write=write) as session:
            yield from produce(Ctx(self, session, account_id), inp)

    def execute(
        self, name: str, data: dict[str, Any] | None = None, *, account: str = LOCAL_ACCOUNT
    ) -> dict[str, Any]:
        """Validate JSON-like input, run the action `name` as `account`, return its JSON output.

        The Python API's one call: the same validation and errors as the CLI and the server.
        """
        from openbotkit.actions import REGISTRY

        act = REGISTRY.get(name)
        out = self.run(act, act.parse_input(data or {}), account_id=self.ensure_account(account))
        return act.dump_output(out)

    def ensure_account(self, name: str) -> str:
        """The id of the account called `name`, created if it does not exist yet."""
        with self.store.session(write=False) as session:
            found = session.scalar(select(Account.id).where(Account.name == name))
        if found:
            return found
        with self.store.session() as session:
            found = session.scalar(select(Account.id).where(Account.name == name))
            if found:
                return found
            account = Account(id=new_id(), name=name)
            session.add(account)
            return account.id

    def local_account_id(self) -> str:
        """The account the embedded connector acts as."""
        return self.ensure_account(LOCAL_ACCOUNT)

    def close(self) -> None:
        self.store.dispose()

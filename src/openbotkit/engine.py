"""The engine: runs actions against the process-wide parts (a Runtime) behind every surface.

A surface (CLI, server, Python API) builds one Engine from Settings and runs actions through it;
each run is one transaction scoped to one account.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from openbotkit.access import Key
from openbotkit.actions.registry import Action, Effect
from openbotkit.errors import InvalidInput, Problem
from openbotkit.runtime import Runtime
from openbotkit.services.accounts import LOCAL_ACCOUNT, ensure_account
from openbotkit.services.context import AccountScope, Ctx
from openbotkit.services.keys import Call, authorize
from openbotkit.settings import Settings
from openbotkit.store import Store

if TYPE_CHECKING:
    from openbotkit.models.providers import LLMProvider
    from openbotkit.retrieval.embedders import Embedder

__all__ = ["LOCAL_ACCOUNT", "Engine"]


class Engine:
    """Runs actions; owns the Runtime (store, embedder, index, models, blobs)."""

    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Embedder | None = None,
        local_llms: Sequence[LLMProvider] = (),
        local_paths: bool = False,
    ) -> None:
        self.runtime = Runtime(
            settings, embedder=embedder, local_llms=local_llms, local_paths=local_paths
        )

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def store(self) -> Store:
        return self.runtime.store

    @property
    def local_paths(self) -> bool:
        """Whether `path` fields may read and write this machine's files (localfiles)."""
        return self.runtime.local_paths

    def run(self, act: Action, inp: BaseModel, *, account_id: str | Key) -> BaseModel:
        """Run one validated action, in one transaction, as `account_id`: an account's id, or
        the Key a secret authenticated to (its limits are enforced here, for every surface)."""
        self._admit_local_fields(act, inp)
        account, key = _acting(account_id)
        if act.extensions.get("own_transactions"):
            scope = AccountScope(self.runtime, account, key)
            if key is not None and not key.unrestricted:
                with scope.transaction(write=False) as ctx:
                    _authorize(ctx, key, act, inp)
            return act.handler(scope, inp)  # type: ignore[no-any-return]
        write = act.effect_for(inp) is not Effect.READ
        with self.store.unit(write=write) as unit:
            ctx = Ctx(self.runtime, unit, account, key)
            if key is not None:
                _authorize(ctx, key, act, inp)
            return act.handler(ctx, inp)  # type: ignore[no-any-return]

    def stream(
        self, act: Action, inp: BaseModel, *, account_id: str | Key
    ) -> Iterator[dict[str, Any]]:
        """Run a streaming action: its events, `{"type", "data"}`, the last one `result`.
        `account_id` as for `run`."""
        produce = act.extensions.get("stream")
        if produce is None:
            raise InvalidInput(
                f"action {act.name} does not stream",
                details=[Problem("", "stream", "not a streaming action")],
            )
        self._admit_local_fields(act, inp)
        account, key = _acting(account_id)
        if act.extensions.get("own_transactions"):
            scope = AccountScope(self.runtime, account, key)
            if key is not None and not key.unrestricted:
                with scope.transaction(write=False) as ctx:
                    _authorize(ctx, key, act, inp)
            yield from produce(scope, inp)
            return
        write = act.effect_for(inp) is not Effect.READ
        with self.store.unit(write=write) as unit:
            ctx = Ctx(self.runtime, unit, account, key)
            if key is not None:
                _authorize(ctx, key, act, inp)
            yield from produce(ctx, inp)

    def _admit_local_fields(self, act: Action, inp: BaseModel) -> None:
        """The one check of local-only fields (`path`), for every surface: honoured only by an
        engine made with `local_paths=True` (the CLI, `obk mcp` on stdio). A server's engine
        never is (create_app refuses one), so REST and MCP over HTTP refuse them here; the one
        `path` a server passes is a request body it staged itself."""
        if self.runtime.local_paths:
            return
        blobs = self.runtime.blobs if act.local_fields else None
        act.refuse_local_fields(
            inp, allowed=lambda value: blobs is not None and blobs.is_staged(Path(value))
        )

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
        return ensure_account(self.store, name)

    def local_account_id(self) -> str:
        """The account the embedded connector acts as."""
        return self.ensure_account(LOCAL_ACCOUNT)

    def close(self) -> None:
        self.runtime.close()


def _acting(who: str | Key) -> tuple[str, Key | None]:
    return (who, None) if isinstance(who, str) else (who.account_id, who)


def _authorize(ctx: Ctx, key: Key, act: Action, inp: BaseModel) -> None:
    """The key's limits against what the registry says this call does and names."""
    if key.unrestricted:  # nothing to check: skip reading the input's resource fields
        return
    call = Call(
        act.name,
        act.effect_for(inp),
        act.target,
        act.creates,
        act.resources(inp),
        configures=act.configures(inp),
        in_session=act.in_session,
        starts_session=act.starts_session,
    )
    authorize(ctx, key, call)

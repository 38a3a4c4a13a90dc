"""What every command shares: settings read once, and an engine built only when needed."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from openbotkit.engine import Engine
    from openbotkit.settings import Settings


@dataclass
class CliState:
    settings: Settings
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from openbotkit.engine import Engine

            self._engine = Engine(self.settings, local_paths=True)
        return self._engine

    def close(self) -> None:
        """Release the engine's connections (a database server counts them) when `obk` ends."""
        if self._engine is not None:
            self._engine.close()
            self._engine = None


def state() -> CliState:
    """The current command's shared state (set up by the `obk` group)."""
    obj = click.get_current_context().find_object(CliState)
    if obj is None:  # pragma: no cover - only when a command runs outside `obk`
        from openbotkit.settings import Settings

        obj = CliState(Settings.from_env())
    return obj


@contextmanager
def quiet_gc() -> Iterator[None]:
    """No cyclic garbage collection while a command imports and sets up (modules, models, the
    database engine): that work makes many long-lived objects and almost no garbage, and the
    collector's passes over them cost a connector call ~15% of its CPU (bench/cli.py). At the
    end what was built is frozen out of later passes (`gc.freeze`) and collection resumes."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()

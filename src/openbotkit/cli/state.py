"""What every command shares: settings read once, and an engine built only when needed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import click

from openbotkit.settings import Settings

if TYPE_CHECKING:
    from openbotkit.engine import Engine


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
        obj = CliState(Settings.from_env())
    return obj

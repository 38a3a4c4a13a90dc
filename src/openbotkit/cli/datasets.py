"""`obk datasets reembed`: maintenance of the search index."""

from __future__ import annotations

import click

from openbotkit.cli.state import state


@click.group()
def datasets() -> None:
    """Maintain datasets' search index."""


@datasets.command("reembed")
def reembed_command() -> None:
    """Give every record a vector from the current embedder (after changing OBK_EMBEDDER)."""
    from openbotkit.retrieval.reembed import reembed

    runtime = state().engine.runtime
    done = reembed(
        runtime.store,
        runtime.embedder,
        runtime.index,
        lambda n: click.echo(f"\r{n} record(s) re-embedded", nl=False),
    )
    click.echo(f"\rdone: {done} record(s) re-embedded")

"""`obk db upgrade`: the store's schema, for deployments that migrate before they roll out."""

from __future__ import annotations

import click
from sqlalchemy.engine.url import make_url

from openbotkit.cli.state import state


@click.group()
def db() -> None:
    """Manage the database openbotkit stores its data in."""


@db.command("upgrade")
def upgrade() -> None:
    """Apply pending schema migrations to the configured database (OBK_DATABASE_URL).

    Every process also does this on first use; running it first lets API processes and workers
    start on a current schema. Safe while other processes run or migrate.
    """
    store = state().engine.store
    revision = store.upgrade()
    where = make_url(store.url).render_as_string(hide_password=True)
    click.echo(f"{where}: schema at revision {revision}")

"""`obk db upgrade` and `obk db copy`: the store's schema, and moving an installation (database
and file contents) into a fresh target."""

from __future__ import annotations

import click
from sqlalchemy.engine.url import make_url

from openbotkit import backends
from openbotkit.cli.state import state


@click.group()
def db() -> None:
    """Manage the database openbotkit stores its data in: upgrade its schema, copy it."""


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


@db.command("copy")
@click.option("--to", "to_url", required=True, help="Database URL of the new, empty target.")
@click.option(
    "--to-blobs",
    "to_blobs",
    default=None,
    help="Blob store URL for the file contents (file:///DIR or s3://BUCKET/PREFIX);"
    " without it they stay where they are.",
)
def copy(to_url: str, to_blobs: str | None) -> None:
    """Copy everything into a fresh database (and blob store), e.g. SQLite to PostgreSQL + S3.

    The target is migrated first and must be empty; nothing is merged. Stop the server and the
    workers first so nothing changes mid-copy.
    """
    from openbotkit.services.moving import copy_installation

    runtime = state().engine.runtime
    target_blobs = backends.blob_store(runtime.settings, to_blobs) if to_blobs else None
    report = copy_installation(runtime, to_url, target_blobs)
    for table, rows in report.rows.items():
        click.echo(f"{table:16} {rows:>9} rows")
    if target_blobs is not None:
        click.echo(f"{'file contents':16} {report.files:>9} files, {report.bytes} bytes")
    else:
        click.echo("file contents left in place: keep OBK_BLOB_URL as it is for the new database")
    click.echo(
        "copied; point OBK_DATABASE_URL"
        + (" and OBK_BLOB_URL" if to_blobs else "")
        + " at the target to use it"
    )

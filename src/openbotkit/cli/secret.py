"""`obk secret create|list|revoke`: API secrets for `obk serve`, one account each."""

from __future__ import annotations

import datetime as dt
import json

import click

from openbotkit.cli.state import state
from openbotkit.services import secrets


@click.group()
def secret() -> None:
    """Create, list and revoke API secrets (Bearer tokens for `obk serve`)."""


@secret.command("create")
@click.option("--account", required=True, help="Account name; created if it does not exist.")
@click.option("--name", help="A label for this secret.")
@click.option("--json", "as_json", is_flag=True, help="Print {id, account, token}.")
def create(account: str, name: str | None, as_json: bool) -> None:
    """Create a secret and print its token. The token is shown only this once."""
    info, token = secrets.create_secret(state().engine.runtime, account, name)
    if as_json:
        click.echo(json.dumps({"id": info.id, "account": account, "token": token}))
    else:
        click.echo(f"secret {info.id} for account {account!r} (shown once, keep it safe):")
        click.echo(token)


@secret.command("list")
@click.option("--account", help="Only this account's secrets.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(account: str | None, as_json: bool) -> None:
    """List secrets (never their tokens)."""
    rows = secrets.list_secrets(state().engine.runtime, account)
    if as_json:
        items = [
            {
                "id": r.id,
                "account": r.account,
                "name": r.name,
                "prefix": r.prefix,
                "createdAt": r.created_at,
                "revokedAt": r.revoked_at,
            }
            for r in rows
        ]
        click.echo(json.dumps({"items": items}))
        return
    for r in rows:
        created = dt.datetime.fromtimestamp(r.created_at / 1000, tz=dt.UTC)
        status = "revoked" if r.revoked_at else "active"
        click.echo(f"{r.id}  {r.account:<16} {r.prefix}…  {status:<8} {created:%Y-%m-%d %H:%M}")


@secret.command("revoke")
@click.argument("secret_id")
def revoke(secret_id: str) -> None:
    """Revoke a secret: requests with it are refused from now on."""
    secrets.revoke(state().engine.runtime, secret_id)
    click.echo(f"revoked {secret_id}")

"""`obk key create|list|revoke|link`: API keys for `obk serve`, one account each, with limits.

ChatBotKit calls these tokens and uses "secret" for the credentials abilities use (`/secret`
actions, `obk connector`). This command was `obk secret`; that name still works for one release
as a hidden alias, which says so on stderr only when stderr is a terminal (programs parse it).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from typing import Any

import click

from openbotkit.access import Effect
from openbotkit.cli.state import state
from openbotkit.errors import InvalidInput, Problem
from openbotkit.ids import now_ms
from openbotkit.services import consoles, secrets
from openbotkit.services.accounts import LOCAL_ACCOUNT

_UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(?:(\d+)([wdhms]))+")
_PART = re.compile(r"(\d+)([wdhms])")


def parse_duration(text: str) -> int:
    """`30d`, `12h`, `1h30m`, `90s`, `2w` -> seconds."""
    value = text.strip().lower()
    if not _DURATION.fullmatch(value):
        raise InvalidInput(
            f"--expires-in {text!r} is not a duration; use e.g. 30d, 12h, 1h30m, 90s or 2w",
            details=[Problem("/expiresIn", "format", "a number and a unit (w, d, h, m, s)")],
        )
    seconds = sum(int(n) * _UNITS[unit] for n, unit in _PART.findall(value))
    if seconds <= 0:
        raise InvalidInput(
            "--expires-in must be longer than 0",
            details=[Problem("/expiresIn", "minimum", "must be > 0")],
        )
    return seconds


def _when(ms: int | None) -> str:
    if ms is None:
        return "never"
    return f"{dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC):%Y-%m-%d %H:%M}"


@click.group()
def key() -> None:
    """Create, list and revoke API keys (Bearer tokens for `obk serve`)."""


class _OldName(click.Group):
    """`obk secret`: the same commands as `obk key`, with a note for people at a terminal."""

    def invoke(self, ctx: click.Context) -> object:
        if sys.stderr.isatty():
            click.echo(
                "note: `obk secret` is now `obk key` (API keys); the old name goes in the next"
                " release",
                err=True,
            )
        return super().invoke(ctx)


@click.group(cls=_OldName, hidden=True)
def secret() -> None:
    """The former name of `obk key`: API keys (kept for one release)."""


@key.command("create")
@click.option("--account", required=True, help="Account name; created if it does not exist.")
@click.option("--name", help="A label for this key.")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice([e.value for e in Effect]),
    help="Highest effect class allowed; each includes those below (default: destructive).",
)
@click.option("--bot", "bots", multiple=True, help="Limit to this bot (id or @alias); repeatable.")
@click.option(
    "--dataset", "datasets", multiple=True, help="Limit to this dataset (id or @alias); repeatable."
)
@click.option("--budget-tokens", type=int, help="Tokens this key may spend on completions.")
@click.option("--expires-in", help="Lifetime, e.g. 30d, 12h, 1h30m.")
@click.option("--json", "as_json", is_flag=True, help="Print {id, account, token, ...}.")
def create(
    account: str,
    name: str | None,
    scopes: tuple[str, ...],
    bots: tuple[str, ...],
    datasets: tuple[str, ...],
    budget_tokens: int | None,
    expires_in: str | None,
    as_json: bool,
) -> None:
    """Create an API key and print its token. The token is shown only this once.

    Without --bot or --dataset the key reaches every resource of the account; with either,
    only those bots (and their conversations) and datasets (and their records and files).
    """
    scope = max((Effect(s) for s in scopes), key=lambda e: e.rank, default=Effect.DESTRUCTIVE)
    expires_at = now_ms() + parse_duration(expires_in) * 1000 if expires_in else None
    limited = bool(bots or datasets)
    info, token = secrets.create_secret(
        state().engine.runtime,
        account,
        name,
        scope=scope,
        bots=list(bots) if limited else None,
        datasets=list(datasets) if limited else None,
        budget_tokens=budget_tokens,
        expires_at=expires_at,
    )
    if as_json:
        click.echo(json.dumps({**_json(info), "token": token}))
    else:
        click.echo(f"key {info.id} for account {account!r} (shown once, keep it safe):")
        click.echo(token)
        click.echo(f"  {_limits(info)}")


def _json(r: secrets.SecretInfo) -> dict[str, Any]:
    return {
        "id": r.id,
        "account": r.account,
        "name": r.name,
        "prefix": r.prefix,
        "status": r.status(),
        "scope": r.scope.value,
        "bots": r.bots,
        "datasets": r.datasets,
        "budgetTokens": r.budget_tokens,
        "tokensUsed": r.tokens_used,
        "expiresAt": r.expires_at,
        "createdAt": r.created_at,
        "revokedAt": r.revoked_at,
    }


def _limits(r: secrets.SecretInfo) -> str:
    if r.bots is None and r.datasets is None:
        reach = "all resources"
    else:
        reach = f"bots: {', '.join(r.bots or []) or 'none'}; "
        reach += f"datasets: {', '.join(r.datasets or []) or 'none'}"
    budget = f"{r.tokens_used}/{r.budget_tokens}" if r.budget_tokens else f"{r.tokens_used}/-"
    return f"scope {r.scope.value}  {reach}  tokens {budget}  expires {_when(r.expires_at)}"


@key.command("list")
@click.option("--account", help="Only this account's secrets.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(account: str | None, as_json: bool) -> None:
    """List API keys (never their tokens): status, scope, resources, tokens used, expiry."""
    rows = secrets.list_secrets(state().engine.runtime, account)
    if as_json:
        click.echo(json.dumps({"items": [_json(r) for r in rows]}))
        return
    for r in rows:
        click.echo(
            f"{r.id}  {r.account:<16} {r.prefix}…  {r.status():<8} "
            f"created {_when(r.created_at)}  {_limits(r)}"
        )


@key.command("revoke")
@click.argument("secret_id")
def revoke(secret_id: str) -> None:
    """Revoke an API key: requests with it are refused from now on."""
    secrets.revoke(state().engine.runtime, secret_id)
    click.echo(f"revoked {secret_id}")


@key.command("link")
@click.option(
    "--account", default=LOCAL_ACCOUNT, show_default=True, help="Account the link signs in to."
)
@click.option(
    "--url",
    default="http://127.0.0.1:8080/",
    show_default=True,
    help="The console's address, as the browser reaches it.",
)
def link(account: str, url: str) -> None:
    """Print a one-time console sign-in link (good for ten minutes), as `obk serve --open` does."""
    link_id, token = consoles.create_link(state().engine.runtime, account)
    click.echo(f"{url.split('#', 1)[0]}#signin={link_id}.{token}")


for _command in (create, list_, revoke, link):
    secret.add_command(_command)

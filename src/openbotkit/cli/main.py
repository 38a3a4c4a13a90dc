"""`obk`: the command-line entry point. Settings are read here, once.

Subcommands are imported when they run (or when help lists them): `obk connector run` must not
pay for the server's or the worker's imports. COMMANDS is the one list of them.
"""

from __future__ import annotations

import importlib
import sys

import click

from openbotkit.cli.state import CliState
from openbotkit.errors import ObkError
from openbotkit.settings import Settings

# Command name -> "module:attribute" of its click command.
COMMANDS = {
    "connector": "openbotkit.cli.connector:connector",
    "datasets": "openbotkit.cli.datasets:datasets",
    "db": "openbotkit.cli.db:db",
    "files": "openbotkit.cli.jobs:files",
    "jobs": "openbotkit.cli.jobs:jobs",
    "mcp": "openbotkit.cli.mcp_stdio:mcp",
    "secret": "openbotkit.cli.secret:secret",
    "serve": "openbotkit.cli.serve:serve",
    "worker": "openbotkit.cli.jobs:worker",
}


class LazyGroup(click.Group):
    """A group whose commands are imported by name, on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        command = getattr(importlib.import_module(module), attr)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup)
@click.version_option(package_name="openbotkit")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """openbotkit: self-hosted, ChatBotKit-compatible bots, datasets, files and completions."""
    ctx.obj = CliState(Settings.from_env())
    ctx.call_on_close(ctx.obj.close)


def main() -> None:
    """Run `obk`; an ObkError from any command is one line on stderr and exit status 1."""
    try:
        cli.main(standalone_mode=False)
    except ObkError as err:
        click.echo(f"error: {err.code}: {err.message}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)

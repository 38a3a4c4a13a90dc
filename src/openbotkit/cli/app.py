"""`obk`'s click application (the entry point, `main.py`, imports it unless a warm process runs
the call). Settings are read here, once.

Subcommands are imported when they run: `obk connector run` must not pay for the server's or the
worker's imports, and `obk --help` imports none of them (their one-line help is read from their
source). COMMANDS is the one list of them.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
from pathlib import Path

import click

from openbotkit.cli.state import quiet_gc
from openbotkit.errors import ObkError

# Command name -> "module:attribute" of its click command.
COMMANDS = {
    "bots": "openbotkit.cli.bots:bots",
    "connector": "openbotkit.cli.connector:connector",
    "datasets": "openbotkit.cli.datasets:datasets",
    "db": "openbotkit.cli.db:db",
    "files": "openbotkit.cli.jobs:files",
    "jobs": "openbotkit.cli.jobs:jobs",
    "key": "openbotkit.cli.secret:key",
    "mcp": "openbotkit.cli.mcp_stdio:mcp",
    "secret": "openbotkit.cli.secret:secret",
    "serve": "openbotkit.cli.serve:serve",
    "worker": "openbotkit.cli.jobs:worker",
}
# Old names that still work but are not listed (`obk secret`: now `obk key`).
HIDDEN = frozenset({"secret"})


class LazyGroup(click.Group):
    """A group whose commands are imported by name, on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        with quiet_gc():
            command = getattr(importlib.import_module(module), attr)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands and their one-line help, as click prints them, without importing them."""
        names = [name for name in self.list_commands(ctx) if name not in HIDDEN]
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [(name, short_help(name, limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def short_help(name: str, limit: int = 45) -> str:
    """A command's one-line help, from its function's docstring in the source (not imported)."""
    module, attr = COMMANDS[name].split(":")
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None
    tree = ast.parse(Path(spec.origin).read_text())
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == attr:
            doc = ast.get_docstring(node) or ""
            return click.Command(name, help=doc).get_short_help_str(limit)
    raise LookupError(f"{COMMANDS[name]} is not a function in its module")


@click.group(cls=LazyGroup)
@click.version_option(package_name="openbotkit")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """openbotkit: self-hosted, ChatBotKit-compatible bots, datasets, files and completions."""
    from openbotkit.cli.state import CliState  # settings (pydantic): not for `obk --help`
    from openbotkit.settings import Settings

    ctx.obj = CliState(Settings.from_env())
    ctx.call_on_close(ctx.obj.close)


def run() -> None:
    """Run `obk` in this process; an ObkError is one line on stderr and exit status 1."""
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

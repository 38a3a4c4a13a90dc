"""`obk`: the command-line entry point. Settings are read here, once."""

from __future__ import annotations

import sys

import click

from openbotkit.cli.connector import connector
from openbotkit.cli.datasets import datasets
from openbotkit.cli.jobs import files, jobs, worker
from openbotkit.cli.secret import secret
from openbotkit.cli.serve import serve
from openbotkit.cli.state import CliState
from openbotkit.errors import ObkError
from openbotkit.settings import Settings


@click.group()
@click.version_option(package_name="openbotkit")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """openbotkit: self-hosted, ChatBotKit-compatible bots, datasets, files and completions."""
    ctx.obj = CliState(Settings.from_env())


cli.add_command(connector)
cli.add_command(secret)
cli.add_command(serve)
cli.add_command(worker)
cli.add_command(jobs)
cli.add_command(files)
cli.add_command(datasets)


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

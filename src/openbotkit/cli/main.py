"""`obk`: the command-line entry point.

A connector call (`obk connector run|schema|list`) first asks a warm process to run it (see
`warm`): that check imports the standard library only, so it must come before the click app,
which is imported only when this process runs the call itself.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    """Run `obk`: in a warm process's child when one answers, else here (then start one)."""
    from openbotkit.cli import warm

    place = warm.place_for(sys.argv[1:], os.environ)
    if place is not None:
        code = warm.call(place, sys.argv)
        if code is not None:
            warm.exit_like(code)
    try:
        from openbotkit.cli.app import run

        run()
    finally:
        if place is not None:
            warm.start(place)

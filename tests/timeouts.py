"""The per-test time limit's "thread" method, done by faulthandler's watchdog (a pytest plugin,
loaded with `-p tests.timeouts` from pyproject.toml's addopts).

pytest-timeout reads the limit (the `timeout` option, @pytest.mark.timeout) and asks this plugin
to arm and cancel it. At the limit, the watchdog (a C thread that needs no interpreter lock, so
native code looping with the lock held does not stop it) writes every thread's stack to the
stderr the run started with and ends the process; under pytest-xdist that fails the running test
by name ("crashed while running ...") and a new worker runs the rest. pytest-timeout's own
"thread" method does the same from a Python thread, which needs the lock, and writes its stacks
to the worker's stdout, which xdist sends to /dev/null; its "signal" method (`-o
timeout_method=signal`) is still there: it fails the test in place, when the interpreter gets
the signal.
"""

from __future__ import annotations

import faulthandler
import os
from typing import Any

import pytest

# The stderr the run started with, taken when pytest imports this plugin (before it captures
# output: what is written to a test's captured stderr is lost with the process).
RUN_STDERR = os.dup(2)

ARMED = pytest.StashKey[bool]()


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> bool | None:
    if settings.method != "thread":
        return None  # pytest-timeout's own method
    faulthandler.dump_traceback_later(settings.timeout, exit=True, file=RUN_STDERR)
    item.stash[ARMED] = True
    return True


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_timeout_cancel_timer(item: pytest.Item) -> bool | None:
    if not item.stash.get(ARMED, False):
        return None
    faulthandler.cancel_dump_traceback_later()
    item.stash[ARMED] = False
    return True

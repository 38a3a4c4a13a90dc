"""Another process holding SQLite's write lock: a transaction begun by a statement, left open
until the process is killed (as a long transaction, or a writer stopped in a debugger, is)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

HOLD = """
import sys, time
from sqlalchemy import text
from openbotkit.store import Store
store = Store(sys.argv[1])
with store.session() as session:
    session.execute(text(sys.argv[2]))
    print("holding", flush=True)
    time.sleep(600)
"""


@contextmanager
def another_process_writing(url: str, statement: str) -> Iterator[subprocess.Popen[str]]:
    """A process that runs `statement` in a write transaction on `url` and holds it; yielded
    once it holds the lock, killed (if it is not yet) when the block ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, url, statement], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
        yield holder
    finally:
        holder.kill()
        holder.wait(timeout=10)
        if holder.stdout is not None:
            holder.stdout.close()

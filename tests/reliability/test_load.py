"""Load, the short variant of bench/load.py: concurrent clients and a streaming completion
against two API processes on SQLite for a few seconds; no 5xx, no transport errors.
(Latency targets are measured by the bench command, not asserted in tests.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_a_short_load_run_has_no_server_errors() -> None:
    out = subprocess.run(
        [sys.executable, "bench/load.py", "--clients", "10", "--seconds", "4", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    ).stdout
    figures = json.loads(out.strip().splitlines()[-1])
    assert figures["server_errors"] == 0 and figures["transport_errors"] == {}, figures
    assert figures["requests"] > 0 and set(figures["statuses"]) <= {"200"}, figures
    assert figures["mix"].keys() >= {"list", "bot_create", "record_create", "search"}, figures

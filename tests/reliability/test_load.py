"""Load, the short variant of bench/load.py: concurrent clients and a streaming completion
against two API processes, on SQLite and on PostgreSQL, for a few seconds: no 5xx, no transport
error (no dropped connection), no API process restarted, memory bounded. (Latency targets are
measured by the bench command, not asserted in tests.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(700)  # the load run below has 600 s of its own
def test_a_short_load_run_has_no_server_errors(database_url: str | None) -> None:
    command = [sys.executable, "bench/load.py", "--clients", "10", "--seconds", "4", "--json"]
    command += ["--reference-clients", "2", "--reference-seconds", "2", "--ramp-up", "1"]
    if database_url:
        command += ["--database-url", database_url]
    out = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    ).stdout
    figures = json.loads(out.strip().splitlines()[-1])
    assert figures["server_errors"] == 0 and figures["transport_errors"] == {}, figures
    assert figures["requests"] > 0 and set(figures["statuses"]) <= {"200"}, figures
    assert set(figures["ramp_up_statuses"]) <= {"200"}, figures
    assert figures["mix"].keys() >= {"list", "bot_create", "record_create", "search"}, figures
    assert figures["database"] == ("postgresql" if database_url else "sqlite"), figures
    assert figures["api_process_restarts"] == 0, figures
    assert figures["server_log_problems"] == 0, figures
    assert figures["reference"]["server_errors"] == 0, figures
    assert figures["reference"]["transport_errors"] == {}, figures
    # Bounded memory (a run this short may still load a model on its way, hence the room).
    assert figures["rss_end_mb"] < figures["rss_start_mb"] * 1.5, figures

"""The suite as a safety net: a test that crashes the process (a native library's segmentation
fault) or hangs fails by name, and the tests after it still run. Checked by running pytest on
small test files with the options the suite itself runs with (pyproject.toml); and a server a
test starts that does not come up fails that test with what the server wrote."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reliability.serving import running
from tests.server.serving import free_port

ROOT = Path(__file__).resolve().parents[1]

CRASHES = """
import ctypes


def test_before():
    pass


def test_crashes():
    ctypes.string_at(0)  # reads address 0: a segmentation fault, as in a native library's bug


def test_after():
    pass
"""

HANGS = """
import threading


def test_hangs():
    threading.Event().wait()  # nothing sets it


def test_after():
    pass
"""


def run_pytest(tmp_path: Path, source: str, *options: str) -> str:
    """pytest on `source` (as test_probe.py) with the project's configuration; its output."""
    (tmp_path / "test_probe.py").write_text(source)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            str(ROOT / "pyproject.toml"),
            "--rootdir",
            str(tmp_path),
            "-p",
            "no:cacheprovider",
            *options,
            "test_probe.py",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output  # tests failed (not an error of pytest itself)
    return output


def outcome(output: str) -> str:
    """pytest's closing line, e.g. '1 failed, 2 passed in 3.1s', without the time."""
    last = [line for line in output.splitlines() if " in " in line and "=" in line][-1]
    return re.sub(r"\s+in [\d.]+s.*", "", last.strip("= "))


def test_a_native_crash_fails_that_test_by_name_and_the_rest_run(tmp_path: Path) -> None:
    output = run_pytest(tmp_path, CRASHES)
    assert "crashed while running 'test_probe.py::test_crashes'" in output, output
    assert "FAILED test_probe.py::test_crashes" in output, output
    assert outcome(output) == "1 failed, 2 passed", output
    # The configured time limit is on, with the method that can end native code.
    assert re.search(r"^timeout: \d+(\.\d+)?s$", output, re.M), output
    assert re.search(r"^timeout method: thread$", output, re.M), output


def test_a_hang_fails_that_test_by_name_and_the_rest_run(tmp_path: Path) -> None:
    # The configured limit with a short value: everything else as the suite runs.
    output = run_pytest(tmp_path, HANGS, "-o", "timeout=3")
    assert "crashed while running 'test_probe.py::test_hangs'" in output, output
    assert "FAILED test_probe.py::test_hangs" in output, output
    # Where it hung: every thread's stack, written as the limit passed.
    assert "Timeout (0:00:03)!" in output, output
    assert re.search(r'test_probe\.py", line \d+ in test_hangs', output), output
    assert outcome(output) == "1 failed, 1 passed", output


def test_a_server_that_exits_fails_the_test_with_what_it_wrote(tmp_path: Path) -> None:
    script = "import sys; print('starting', file=sys.stderr); sys.exit('OBK_PORT: not a number')"
    url = f"http://127.0.0.1:{free_port()}/"
    with (
        pytest.raises(pytest.fail.Exception) as failed,
        running([sys.executable, "-c", script], dict(os.environ), tmp_path / "s.log", url),
    ):
        pass
    message = str(failed.value)
    assert "exited with 1 before " + url in message
    assert "starting\nOBK_PORT: not a number" in message


def test_a_server_that_never_answers_fails_the_test_with_what_it_wrote(tmp_path: Path) -> None:
    script = "import sys, time; print('waiting for the database', file=sys.stderr); time.sleep(60)"
    url = f"http://127.0.0.1:{free_port()}/"
    log = tmp_path / "s.log"
    with (
        pytest.raises(pytest.fail.Exception) as failed,
        running([sys.executable, "-c", script], dict(os.environ), log, url, timeout_s=5),
    ):
        pass
    message = str(failed.value)
    assert f"did not answer {url} within 5 s" in message
    assert "waiting for the database" in message

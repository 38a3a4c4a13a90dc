"""What a connector call imports: an agent pays for every module on every call.

The modules are read from the finished process (`sys.modules`), so the check is what the real
`obk` entry point loaded, not what the code seems to import. Speed itself is measured by
bench/cli.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# Heavy stacks no plain read needs: models and their runtimes, the migration tool, the server,
# the HTTP client (only URL uploads, remote models and --base-url use it), terminal rendering.
NOT_FOR_READS = (
    "torch",
    "sentence_transformers",
    "llama_cpp",
    "onnxruntime",
    "alembic",
    "numpy",
    "uvicorn",
    "starlette",
    "httpx",
    "rich",
)

PROBE = """
import sys
from openbotkit.cli.main import main
sys.argv = ["obk", *sys.argv[1:]]
try:
    main()
finally:
    print("\\n" + " ".join(sorted({m.split(".")[0] for m in sys.modules})), file=sys.stderr)
"""


def loaded_by(*args: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        env=os.environ,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return set(proc.stderr.strip().splitlines()[-1].split())


@pytest.mark.parametrize(
    "args",
    [
        ("connector", "run", "chatbotkit", "--action", "list_bots", "--json"),
        ("connector", "run", "chatbotkit", "--action", "fetch_usage", "--json"),
        ("connector", "schema", "chatbotkit", "--action", "update_bot"),
        ("--help",),
    ],
    ids=["list_bots", "fetch_usage", "schema", "help"],
)
def test_reads_import_no_heavy_stack(args: tuple[str, ...]) -> None:
    # A first call migrates the new database (Alembic's job); the call checked comes after it.
    loaded_by("connector", "run", "chatbotkit", "--action", "list_bots", "--json")
    assert sorted(loaded_by(*args) & set(NOT_FOR_READS)) == []


def test_a_write_imports_no_model_runtime() -> None:
    data = json.dumps({"name": "Quick"})
    args = ("connector", "run", "chatbotkit", "--action", "create_bot", "--data", data, "--json")
    loaded_by(*args)
    assert sorted(loaded_by(*args) & {"torch", "llama_cpp", "onnxruntime", "alembic"}) == []

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
from pathlib import Path
from typing import Any

import pytest

from openbotkit.cli.app import COMMANDS

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
    print("\\n" + " ".join(sorted(sys.modules)), file=sys.stderr)
"""
# What the model stacks are: none may load for a read, whatever else it needs.
MODEL_STACKS = {"torch", "sentence_transformers", "transformers", "llama_cpp", "alembic"}


def modules_loaded_by(*args: str) -> set[str]:
    """Every module (dotted names) the `obk` process had imported when it ended."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        env=os.environ,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return set(proc.stderr.strip().splitlines()[-1].split())


def loaded_by(*args: str) -> set[str]:
    """The top-level packages the `obk` process had imported."""
    return {m.split(".")[0] for m in modules_loaded_by(*args)}


def run_json(*args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    found: dict[str, Any] = json.loads(proc.stdout)
    return found


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


def test_a_read_imports_only_its_own_action_module() -> None:
    loaded_by("connector", "run", "chatbotkit", "--action", "list_bots", "--json")
    args = ("connector", "run", "chatbotkit", "--action", "list_bots", "--json")
    actions = {m for m in modules_loaded_by(*args) if m.startswith("openbotkit.actions.")}
    assert actions == {
        "openbotkit.actions.base",
        "openbotkit.actions.bots",
        "openbotkit.actions.index",
        "openbotkit.actions.registry",
    }


@pytest.mark.parametrize(
    "args",
    [
        ("connector", "schema", "chatbotkit", "--action", "search_dataset"),
        ("connector", "list", "--json"),
    ],
    ids=["schema", "list"],
)
def test_describing_actions_touches_no_database_code(args: tuple[str, ...]) -> None:
    loaded = modules_loaded_by(*args)
    assert "sqlalchemy" not in loaded
    assert [m for m in loaded if m.startswith(("openbotkit.services", "openbotkit.store"))] == []


def test_help_imports_no_command_and_no_settings() -> None:
    loaded = modules_loaded_by("--help")
    commands = {target.split(":")[0] for target in COMMANDS.values()}
    assert sorted(commands & loaded) == []
    assert {"pydantic", "sqlalchemy"} & {m.split(".")[0] for m in loaded} == set()


@pytest.mark.slow
def test_a_search_loads_the_embedder_without_a_model_stack() -> None:
    """search_dataset embeds the query with onnxruntime; PyTorch & co. stay out (a first call
    may export the ONNX model once per machine, which needs PyTorch: that call is not checked)."""
    base = ("connector", "run", "chatbotkit", "--json", "--action")
    ds = run_json(*base, "create_dataset", "--data", '{"name": "kb"}')["data"]["id"]
    record = json.dumps({"datasetId": ds, "text": "Lisbon is the capital of Portugal."})
    run_json(*base, "create_dataset_record", "--data", record)
    query = json.dumps({"datasetId": ds, "search": "capital of Portugal"})
    found = run_json(*base, "search_dataset", "--data", query)["data"]["records"]
    assert "Lisbon" in found[0]["text"]
    loaded = loaded_by(*base, "search_dataset", "--data", query)
    assert "onnxruntime" in loaded
    assert sorted(loaded & MODEL_STACKS) == []


def test_the_warm_start_client_imports_no_cli_stack(tmp_path: Path) -> None:
    """The check before a connector call (is a warm process there?) is standard library only;
    tests/cli/test_warm.py checks the same of a call a warm process served."""
    probe = (
        "import os, sys\n"
        "from openbotkit.cli import main, warm\n"
        "place = warm.place_for(['connector', 'run'], os.environ)\n"
        "assert place is not None and warm.call(place, ['obk']) is None\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    env = {**os.environ, "OBK_CLI_WARM_SECONDS": "5", "XDG_RUNTIME_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    loaded = {m.split(".")[0] for m in proc.stdout.split()}
    assert loaded & {"click", "pydantic", "sqlalchemy", "subprocess", "numpy"} == set()

"""Connector CLI start-up: wall time of one `obk connector run` against a bare-Python reference.

    .venv/bin/python bench/cli.py [--runs 7]

An agent pays for a whole process per action, so the figure is a whole process: the median wall
time of `obk connector run chatbotkit --action A --json` for list_bots, fetch_bot, create_bot
and search_dataset (on a 2,000-record dataset), plus `obk --help` and `connector schema`. The
reference, timed in the same run and interleaved with obk's runs, is a fresh `python -c` that
opens the same SQLite file with the standard library and prints the same bots as JSON. Targets
(issue "Speed"): reads <= 250 ms and <= 6x the reference, writes <= 300 ms, search <= 400 ms.

A second line, "stack floor", times a bare `python -c` importing only the libraries every
embedded call needs (click, pydantic, SQLAlchemy's ORM): what bounds a read short of dropping one.

Each connector command is timed twice: "cold" with warm start off (OBK_CLI_WARM_SECONDS=0, a
whole fresh process) and "warm" served by the warm process a priming call started (the
client's process plus a forked child). The warm process is terminated at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
REFERENCE = """
import json, sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
rows = conn.execute(
    "SELECT id, name, description, created_at, updated_at FROM bots ORDER BY created_at DESC LIMIT 20"
).fetchall()
keys = ("id", "name", "description", "createdAt", "updatedAt")
print(json.dumps({"data": {"items": [dict(zip(keys, r)) for r in rows]}}))
"""

FLOOR = "import click, pydantic, sqlalchemy.orm"


def wait_for_server(runtime: Path) -> None:
    """Until the warm process a priming call started is listening (it imports first)."""
    deadline = time.monotonic() + 300
    while not list(runtime.glob("*/*.pid")):
        if time.monotonic() > deadline:
            raise SystemExit("the warm process did not start")
        time.sleep(0.1)


def stop_servers(runtime: Path) -> None:
    for pid_file in runtime.glob("*/*.pid"):
        try:
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        except (OSError, ValueError):
            pass


def obk(*args: str) -> list[str]:
    return [str(BIN / "obk"), *args]


def run(cmd: list[str], env: dict[str, str]) -> float:
    """Wall time of one whole command."""
    started = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def seed(env: dict[str, str]) -> tuple[str, str]:
    """Bots to list, and a 2,000-record dataset to search (written in-process, in batches)."""
    from openbotkit.engine import Engine
    from openbotkit.services import datasets, records
    from openbotkit.services.context import AccountScope
    from openbotkit.settings import Settings

    engine = Engine(Settings.from_env(env))
    try:
        bot = ""
        for i in range(20):
            bot = engine.execute("create_bot", {"name": f"bot {i}", "description": "bench"})["id"]
        ds = engine.execute("create_dataset", {"name": "bench"})["id"]
        texts = [f"Record {i} about topic {i % 97} and detail {i % 13}." for i in range(2000)]
        scope = AccountScope(engine.runtime, engine.local_account_id())
        for start in range(0, len(texts), 200):
            batch = texts[start : start + 200]
            with scope.transaction(write=False) as ctx:
                vectors = records.embed_texts(ctx, batch)
            with scope.transaction() as ctx:
                items = [{"text": t} for t in batch]
                records.create_many(ctx, datasets.get(ctx, ds), items, vectors)
        return bot, ds
    finally:
        engine.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runtime = Path(tmp) / "run"
        runtime.mkdir(mode=0o700)
        env = {**os.environ, "OBK_HOME": str(Path(tmp) / "home"), "HF_HUB_OFFLINE": "1"}
        env.pop("CHATBOTKIT_BASE_URL", None)
        # An installed package has its bytecode (pip compiles it); a development shell that sets
        # PYTHONDONTWRITEBYTECODE would make every timed run recompile openbotkit's sources.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        cold_env = {**env, "OBK_CLI_WARM_SECONDS": "0"}
        warm_env = {**env, "OBK_CLI_WARM_SECONDS": "600", "XDG_RUNTIME_DIR": str(runtime)}
        print("seeding 20 bots and 2,000 records ...", flush=True)
        bot, ds = seed(cold_env)
        db = str(Path(tmp) / "home" / "openbotkit.sqlite3")

        def action(name: str, data: dict[str, object]) -> list[str]:
            return obk(
                "connector",
                "run",
                "chatbotkit",
                "--action",
                name,
                "--json",
                "--data",
                json.dumps(data),
            )

        connector: dict[str, tuple[str, list[str]]] = {
            "connector schema update_bot": (
                "read",
                obk("connector", "schema", "chatbotkit", "--action", "update_bot"),
            ),
            "list_bots": ("read", action("list_bots", {})),
            "fetch_bot": ("read", action("fetch_bot", {"botId": bot})),
            "create_bot": ("write", action("create_bot", {"name": "bench"})),
            "search_dataset (2k records)": (
                "search",
                action("search_dataset", {"datasetId": ds, "search": "topic 42"}),
            ),
        }
        cases: dict[str, tuple[str, list[str], dict[str, str]]] = {
            "reference (python + sqlite3)": ("ref", [sys.executable, "-c", REFERENCE, db], env),
            "stack floor (imports only)": ("floor", [sys.executable, "-c", FLOOR], env),
            "obk --help": ("read", obk("--help"), cold_env),
        }
        for name, (kind, cmd) in connector.items():
            cases[f"{name}, cold"] = (kind, cmd, cold_env)
            cases[f"{name}, warm"] = (kind, cmd, warm_env)
        try:
            for _kind, cmd, case_env in cases.values():  # the OS cache, the ONNX model, priming
                run(cmd, case_env)
            wait_for_server(runtime)
            for _kind, cmd, case_env in cases.values():
                run(cmd, case_env)
            times: dict[str, list[float]] = {name: [] for name in cases}
            for _ in range(args.runs):  # interleaved, so machine noise hits every case alike
                for name, (_kind, cmd, case_env) in cases.items():
                    times[name].append(run(cmd, case_env))
        finally:
            stop_servers(runtime)
    ref = statistics.median(times["reference (python + sqlite3)"])
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\n{args.runs} runs each, interleaved; load average {load}")
    targets = {"read": 0.250, "write": 0.300, "search": 0.400}
    print(f"{'command':38} {'median':>9} {'min':>9} {'max':>9} {'x ref':>7}  target")
    for name, (kind, _cmd, _env) in cases.items():
        t = times[name]
        med = statistics.median(t)
        target = targets.get(kind)
        verdict = (
            ""
            if target is None
            else f"<= {target * 1000:.0f} ms: {'met' if med <= target else 'MISSED'}"
        )
        if name.startswith(("list_bots", "fetch_bot")):
            verdict += f", <= 6x ref: {'met' if med <= 6 * ref else 'MISSED'}"
        print(
            f"{name:38} {med * 1000:7.0f}ms {min(t) * 1000:7.0f}ms {max(t) * 1000:7.0f}ms "
            f"{med / ref:6.1f}x  {verdict}"
        )


if __name__ == "__main__":
    main()

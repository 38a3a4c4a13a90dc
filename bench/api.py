"""API throughput: `obk serve` against a reference server doing the same work, side by side.

    .venv/bin/python bench/api.py [--requests 3000] [--clients 10] [--rounds 3]

The reference (bench/api_reference.py) is Starlette + the standard library's sqlite3 + orjson,
started as its own uvicorn process on the SQLite file obk serves: per request it hashes the
bearer token, looks the account up in a dict that remembers the secrets table, reads (or inserts)
the same rows of the same indexed table and builds the same JSON; the script checks that its list
and fetch bodies are byte for byte obk's. A third server answers the same paths with constant
bodies: the floor of uvicorn + Starlette alone.

Each server runs one uvicorn worker on loopback. For `GET /api/v1/bot/list?take=20`,
`GET /api/v1/bot/{id}/fetch` and `POST /api/v1/bot/create`, 10 keep-alive clients send a bounded
number of requests; the servers take turns, `--rounds` times, and the median round is printed
(requests/s, p50 and p99 latency) with the ratio obk / reference (target: >= 0.5) and the load
average. Then obk's own time per request is split by layer, in process, to show where it goes.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from serving import free_port, new_secret, wait_ready  # type: ignore[import-not-found]

BIN = Path(sys.executable).parent
HERE = Path(__file__).parent
CONTENT_LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")
CREATE_BODY = {
    "name": "bench bot",
    "backstory": "Be brief and kind.",
    "meta": {"i": 1},
    "model": "smollm2/maxTokens=100",
}


FLOOR_APP = textwrap.dedent(
    """
    import json, os, uvicorn
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route
    bodies = json.loads(os.environ["BENCH_BODIES"])
    def handler(body):
        body = body.encode()
        async def endpoint(request):
            return Response(body, media_type="application/json")
        return endpoint
    app = Starlette(routes=[Route(p, handler(b), methods=[m]) for p, (m, b) in bodies.items()])
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["BENCH_PORT"]), log_level="warning",
                access_log=False)
    """
)


def loadavg() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def cpu_seconds(pid: int) -> float:
    """CPU time the process's threads have run so far, in nanoseconds from the scheduler (the
    tick-counted times in /proc/PID/stat are too coarse for a few thousand short requests)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):  # a thread that just ended
            continue
    return total / 1e9


async def measure(
    origin: str,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    total: int,
    clients: int,
    pid: int,
) -> tuple[float, float, float, float]:
    """Requests/s, p50 and p99 ms for `clients` keep-alive connections sending `total` requests,
    and the server's CPU time per request in microseconds.

    The client speaks HTTP/1.1 on raw asyncio streams (a few microseconds per request), so on
    two cores the figures are the server's, not an HTTP client library's (httpx here costs
    more per request than a bare Starlette handler does). On a shared machine requests/s
    follow the CPU share the server happens to get; its CPU time per request does not, so the
    ratio of those is printed too (on an idle machine one worker's rate is about its inverse).
    """
    host, port = origin.removeprefix("http://").split(":")
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    request = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{head}\r\n".encode() + body
    latencies: list[float] = []
    per_client = total // clients

    async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(request)
        status_and_headers = await reader.readuntil(b"\r\n\r\n")
        assert status_and_headers.startswith(b"HTTP/1.1 200"), status_and_headers[:80]
        match = CONTENT_LENGTH.search(status_and_headers)
        assert match is not None, "a JSON response has a content-length"
        await reader.readexactly(int(match.group(1)))

    async def client() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        for _ in range(20):  # warm-up
            await exchange(reader, writer)
        for _ in range(per_client):
            t = time.perf_counter()
            await exchange(reader, writer)
            latencies.append(time.perf_counter() - t)
        writer.close()
        await writer.wait_closed()

    started, cpu = time.perf_counter(), cpu_seconds(pid)
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed, cpu = time.perf_counter() - started, cpu_seconds(pid) - cpu
    ms = np.array(latencies) * 1000
    n = clients * (per_client + 20)
    return (
        len(latencies) / elapsed,
        float(np.percentile(ms, 50)),
        float(np.percentile(ms, 99)),
        cpu / n * 1e6,
    )


def per_call_us(fn: Callable[[], Any], n: int = 2000) -> float:
    for _ in range(n // 10):
        fn()
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - started) / n * 1e6


def split_by_layer(home: Path, token: str, bot_id: str, rates: dict[str, float]) -> None:
    """obk's time per request, in process and by layer: the action in its transaction
    (`engine.run`: session, SQL, output model), the input model, the JSON bytes, and the rest
    (HTTP, routing, auth, middleware, the event loop) as what the server's rate leaves."""
    from openbotkit.actions import REGISTRY
    from openbotkit.engine import Engine
    from openbotkit.server.negotiation import query_input  # noqa: F401 - imported as served
    from openbotkit.server.routes import json_response
    from openbotkit.services.secrets import key_for_token
    from openbotkit.settings import Settings

    engine = Engine(Settings(home=home))
    key = key_for_token(engine.runtime, token)
    assert key is not None
    calls = {
        "list": ("list_bots", {"take": "20"}),
        "fetch": ("fetch_bot", {"botId": bot_id}),
    }
    print(
        f"\nobk per request, by layer (us; in process)\n"
        f"{'scenario':<9} {'served':>7} {'input':>7} {'engine.run':>11} {'json':>6} {'rest':>6}"
    )
    for name, (action_name, data) in calls.items():
        act = REGISTRY.get(action_name)
        inp = act.parse_input(data)
        out = engine.run(act, inp, account_id=key)
        input_us = per_call_us(functools.partial(act.parse_input, dict(data)))
        run_us = per_call_us(functools.partial(engine.run, act, inp, account_id=key))
        json_us = per_call_us(functools.partial(json_response, out))
        total_us = 1e6 / rates[name]
        rest = total_us - input_us - run_us - json_us
        print(
            f"{name:<9} {total_us:>7.0f} {input_us:>7.0f} {run_us:>11.0f} {json_us:>6.0f} {rest:>6.0f}"
        )
    engine.close()


def start(cmd: list[str | Path], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "OBK_HOME": home, "HF_HUB_OFFLINE": "1"}
        env.pop("OBK_DATABASE_URL", None)  # the embedded default: the reference reads its file
        token = new_secret(env, "bench")
        ports = {"obk": free_port(), "reference": free_port(), "floor": free_port()}
        bases = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        procs: dict[str, subprocess.Popen[bytes]] = {}
        try:
            procs["obk"] = start(
                [
                    BIN / "obk",
                    "serve",
                    "--port",
                    str(ports["obk"]),
                    "--log-level",
                    "warning",
                    "--no-worker",
                ],
                env,
            )
            wait_ready(bases["obk"] + "/healthz", procs["obk"])
            headers = {"Authorization": f"Bearer {token}"}
            ids = [
                httpx.post(
                    bases["obk"] + "/api/v1/bot/create",
                    headers=headers,
                    json={**CREATE_BODY, "name": f"bot {i}", "meta": {"i": i}},
                ).json()["id"]
                for i in range(20)
            ]
            scenarios = {
                "list": ("GET", "/api/v1/bot/list?take=20", b""),
                "fetch": ("GET", f"/api/v1/bot/{ids[0]}/fetch", b""),
                "create": ("POST", "/api/v1/bot/create", json.dumps(CREATE_BODY).encode()),
            }
            bodies = {
                path.split("?")[0]: (method, httpx.get(bases["obk"] + path, headers=headers).text)
                for method, path, _payload in scenarios.values()
                if method == "GET"
            }
            bodies["/api/v1/bot/create"] = ("POST", '{"id":"x"}')
            procs["reference"] = start(
                [
                    sys.executable,
                    HERE / "api_reference.py",
                    "--db",
                    str(Path(home) / "openbotkit.sqlite3"),
                    "--port",
                    str(ports["reference"]),
                ],
                env,
            )
            procs["floor"] = start(
                [sys.executable, "-c", FLOOR_APP],
                {**env, "BENCH_BODIES": json.dumps(bodies), "BENCH_PORT": str(ports["floor"])},
            )
            wait_ready(bases["reference"] + "/api/v1/bot/list", procs["reference"])
            wait_ready(bases["floor"] + "/api/v1/bot/list", procs["floor"])
            for method, path, _ in scenarios.values():
                if method != "GET":
                    continue
                obk_body = httpx.get(bases["obk"] + path, headers=headers).content
                ref_body = httpx.get(bases["reference"] + path, headers=headers).content
                if obk_body != ref_body:
                    print(f"the reference's {path} differs from obk's:\n{ref_body!r}\n{obk_body!r}")
                    return 1
            print(
                f"{args.requests} requests per scenario and server, {args.clients} keep-alive "
                f"clients, loopback, one uvicorn worker each, median of {args.rounds} rounds"
            )
            print(loadavg())
            print(
                f"{'scenario':<8} {'obk req/s':>9} {'p50':>6} {'p99':>6} {'cpu us':>6} "
                f"{'ref req/s':>9} {'p50':>6} {'p99':>6} {'cpu us':>6} {'floor r/s':>9} "
                f"{'obk/ref':>7} {'by cpu':>6}"
            )
            rates: dict[str, float] = {}
            for name, (method, path, body) in scenarios.items():
                results: dict[str, list[tuple[float, float, float, float]]] = {s: [] for s in bases}
                for _ in range(args.rounds):
                    for server, base in bases.items():
                        if server == "floor" and method != "GET":
                            continue
                        sent = {} if server == "floor" else headers
                        results[server].append(
                            asyncio.run(
                                measure(
                                    base,
                                    method,
                                    path,
                                    sent,
                                    body,
                                    args.requests,
                                    args.clients,
                                    procs[server].pid,
                                )
                            )
                        )
                median = {
                    s: sorted(r)[len(r) // 2] if r else (float("nan"),) * 4
                    for s, r in results.items()
                }
                ours, theirs, floor = median["obk"], median["reference"], median["floor"]
                pairs = list(zip(results["obk"], results["reference"], strict=True))
                ratio = statistics.median(o[0] / t[0] for o, t in pairs)
                by_cpu = statistics.median(t[3] / o[3] for o, t in pairs)
                print(
                    f"{name:<8} {ours[0]:>9.0f} {ours[1]:>6.2f} {ours[2]:>6.2f} {ours[3]:>6.0f} "
                    f"{theirs[0]:>9.0f} {theirs[1]:>6.2f} {theirs[2]:>6.2f} {theirs[3]:>6.0f} "
                    f"{floor[0]:>9.0f} {ratio:>7.2f} {by_cpu:>6.2f}"
                )
                rates[name] = ours[0]
            print(
                "(p50 and p99 in ms; cpu us: the server's CPU time per request; obk/ref: the "
                "median of the rounds' ratios of requests/s; by cpu: of reference cpu / obk cpu)"
            )
            print(loadavg())
            split_by_layer(Path(home), token, ids[0], rates)
        finally:
            for proc in procs.values():
                proc.terminate()
            for name, proc in procs.items():
                proc.wait(timeout=20)
                err = proc.stderr.read().decode() if proc.stderr else ""
                if proc.returncode not in (0, -15) and err:
                    print(f"{name} server stderr:\n{err}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

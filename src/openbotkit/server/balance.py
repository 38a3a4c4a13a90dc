"""Even client connections across the API processes of one `obk serve --workers N`.

The kernel gives each new connection to whichever process accepts it first, and that process
keeps it for the connection's life. Clients that keep their connection open (SDKs, browsers, load
generators) stay spread however they arrived: under `bench/load.py` one of 2 processes held 29 to
32 of 51 connections in 6 of 19 runs; each process gets the same share of the cores, so its
clients waited longer (about 1.6 times as long as the other's, in one traced run).

So each process counts the clients it answered in the last second and publishes the count in a
folder it shares with its siblings (the supervisor makes it). A process holding more than its
share (all counts over the number of processes, rounded up) asks one client per round to
reconnect: that client's next response carries `Connection: close`, as HTTP/1.1 allows, and the
client opens a new connection for its next request. The client loses nothing (the response is
whole; HTTP clients reconnect by themselves), and the new connection goes to a process that is
free to accept it, most often the less busy one. One client per round, because the siblings'
counts are up to a round old.

A client is its address and port. Behind a proxy that rewrites the address (X-Forwarded-For),
connections are undercounted and fewer are moved; such a proxy spreads requests itself.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ROUND_S = 0.5
# A client that sent nothing for this long is not counted (it may have gone).
ACTIVE_S = 1.0
# A count older than this is a process that stopped (uvicorn replaces it with a new one).
STALE_S = 3.0

Client = tuple[str, int]
log = logging.getLogger("openbotkit.server")


class Peers:
    """The counts of the API processes that share `folder`, one file per process."""

    def __init__(self, folder: Path, name: str | None = None) -> None:
        self.folder = folder
        self.name = name or str(os.getpid())

    def publish(self, count: int) -> None:
        partial = self.folder / f".{self.name}"
        partial.write_text(str(count))
        partial.replace(self.folder / self.name)  # readers never see a half-written count

    def counts(self) -> list[int]:
        """Every live process's count, this one's included."""
        found = []
        now = time.time()
        for entry in os.scandir(self.folder):
            if entry.name.startswith("."):
                continue
            with contextlib.suppress(OSError, ValueError):  # gone, or being replaced
                if now - entry.stat().st_mtime <= STALE_S:
                    found.append(int(Path(entry.path).read_text()))
        return found


class ConnectionBalance:
    """Counts this process's clients and moves one to a sibling per round while it holds more
    than its share (see the module's docstring). `middleware` is what the app installs."""

    def __init__(self, peers: Peers, clock: Callable[[], float] = time.monotonic) -> None:
        self.peers = peers
        self.clock = clock
        self.seen: dict[Client, float] = {}  # client -> when it last sent a request
        self.to_move = 0

    def middleware(self, app: ASGIApp) -> ASGIApp:
        async def balanced(scope: Scope, receive: Receive, send: Send) -> None:
            client = scope.get("client") if scope["type"] == "http" else None
            if not client:
                await app(scope, receive, send)
                return
            peer: Client = (client[0], client[1])
            self.seen[peer] = self.clock()
            if self.to_move <= 0:
                await app(scope, receive, send)
                return

            async def send_maybe_moving(message: Message) -> None:
                moving = message["type"] == "http.response.start" and self.to_move > 0
                if moving and self.seen.pop(peer, None) is not None:
                    self.to_move -= 1
                    headers = [*message.get("headers", ()), (b"connection", b"close")]
                    message = {**message, "headers": headers}
                await send(message)

            await app(scope, receive, send_maybe_moving)

        return balanced

    def rebalance(self) -> None:
        """One round: forget quiet clients, publish this process's count, and move one client
        if this process holds more than its share."""
        quiet_since = self.clock() - ACTIVE_S
        self.seen = {c: t for c, t in self.seen.items() if t >= quiet_since}
        mine = len(self.seen)
        self.peers.publish(mine)
        counts = self.peers.counts()
        share = math.ceil(sum(counts) / len(counts)) if counts else mine
        self.to_move = 1 if mine > share else 0
        if self.to_move:
            log.debug("moving a client: this process holds %d, its share is %d", mine, share)

    async def run(self) -> None:
        """Rounds until cancelled (the app's lifespan runs it). A round that cannot reach the
        folder (removed under a running server) moves nobody; serving goes on regardless."""
        while True:
            await anyio.sleep(ROUND_S)
            try:
                self.rebalance()
            except OSError as exc:
                self.to_move = 0
                log.warning("connection balance skipped a round: %s", exc)

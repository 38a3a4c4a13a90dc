"""Connections even out across the API processes of one `obk serve`: the counts each process
publishes, the share it compares against, and the one client per round it moves."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path

from starlette.types import Message, Receive, Scope, Send

from openbotkit.server.balance import ACTIVE_S, ROUND_S, STALE_S, ConnectionBalance, Peers


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def answer(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-a", b"1")]})
    await send({"type": "http.response.body", "body": b"ok"})


def request(balance: ConnectionBalance, client: tuple[str, int]) -> list[Message]:
    """One request from `client` through the balance's middleware: what the client is sent."""
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    scope: Scope = {"type": "http", "client": client, "path": "/", "method": "GET"}
    asyncio.run(balance.middleware(answer)(scope, receive, send))
    return sent


def closes(sent: list[Message]) -> bool:
    return (b"connection", b"close") in sent[0]["headers"]


def test_peers_count_every_live_process_and_skip_stopped_ones(tmp_path: Path) -> None:
    one, two, gone = Peers(tmp_path, "1"), Peers(tmp_path, "2"), Peers(tmp_path, "3")
    one.publish(7)
    two.publish(4)
    gone.publish(30)
    old = time.time() - STALE_S - 1
    os.utime(tmp_path / "3", (old, old))  # a process that stopped publishing
    (tmp_path / ".4").write_text("12")  # a count being written
    assert sorted(one.counts()) == [4, 7]
    one.publish(5)  # a new round replaces the count
    assert sorted(two.counts()) == [4, 5]


def test_a_process_over_its_share_moves_one_client_per_round(tmp_path: Path) -> None:
    clock = Clock()
    heavy = ConnectionBalance(Peers(tmp_path, "heavy"), clock)
    light = ConnectionBalance(Peers(tmp_path, "light"), clock)
    for port in range(10):
        assert not closes(request(heavy, ("127.0.0.1", port)))
    for port in range(10, 14):
        request(light, ("127.0.0.1", port))
    light.rebalance()
    heavy.rebalance()  # 10 against 4: its share is 7
    light.rebalance()
    assert (heavy.to_move, light.to_move) == (1, 0)

    moved = [port for port in range(10) if closes(request(heavy, ("127.0.0.1", port)))]
    assert moved == [0]  # the next response only; the others keep their connection
    sent = request(heavy, ("127.0.0.1", 0))  # the client came back on a new connection
    assert not closes(sent) and (b"x-a", b"1") in sent[0]["headers"]
    assert sent[1]["body"] == b"ok"
    # The lighter process never moves a client.
    assert not any(closes(request(light, ("127.0.0.1", p))) for p in range(10, 14))


def test_clients_that_went_quiet_are_not_counted(tmp_path: Path) -> None:
    clock = Clock()
    heavy = ConnectionBalance(Peers(tmp_path, "heavy"), clock)
    light = ConnectionBalance(Peers(tmp_path, "light"), clock)
    for port in range(6):
        request(heavy, ("127.0.0.1", port))
    for port in range(10, 13):
        request(light, ("127.0.0.1", port))
    clock.now += ACTIVE_S + 0.1
    for port in range(3):  # half of the heavy process's clients are still there
        request(heavy, ("127.0.0.1", port))
    for port in range(10, 13):  # and all of the light one's
        request(light, ("127.0.0.1", port))
    light.rebalance()
    heavy.rebalance()
    assert len(heavy.seen) == 3 and heavy.to_move == 0


def test_a_lone_process_moves_nothing(tmp_path: Path) -> None:
    alone = ConnectionBalance(Peers(tmp_path, "only"))
    for port in range(20):
        request(alone, ("127.0.0.1", port))
    alone.rebalance()
    assert alone.to_move == 0
    assert not any(closes(request(alone, ("127.0.0.1", p))) for p in range(20))


def test_rounds_go_on_when_the_folder_is_gone(tmp_path: Path) -> None:
    folder = tmp_path / "peers"
    folder.mkdir()
    balance = ConnectionBalance(Peers(folder, "me"))
    balance.to_move = 1
    folder.rmdir()  # removed under a running server

    async def a_few_rounds() -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(balance.run(), timeout=ROUND_S * 2.5)

    asyncio.run(a_few_rounds())  # no error escapes the rounds
    assert balance.to_move == 0

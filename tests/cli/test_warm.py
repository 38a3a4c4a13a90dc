"""Warm start of connector calls, with real `obk` processes and a real warm server.

Each test gets its own runtime directory (where the server's socket, lock and pid file live) and
kills every server it started. A call counts as served warm when the process running it is a
child of the server whose pid file is in that directory.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from openbotkit.cli import warm
from openbotkit.settings import Settings
from tests.cli.test_startup import PROBE  # prints the modules an `obk` call imported

OBK = str(Path(sys.executable).parent / "obk")
RUN = ("connector", "run", "chatbotkit", "--json", "--action")
EXECUTION = re.compile(r'"executionId": "[0-9a-z]+"')


def obk(
    env: dict[str, str], *args: str, cwd: Path | None = None, data: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OBK, *args], env=env, cwd=cwd, input=data, capture_output=True, text=True, timeout=120
    )


def servers(runtime: Path) -> list[int]:
    """Pids of the live warm servers whose pid files are under `runtime`."""
    found = []
    for pid_file in runtime.glob("*/*.pid"):
        try:
            pid = int(pid_file.read_text())
            os.kill(pid, 0)
        except (OSError, ValueError):
            continue
        found.append(pid)
    return found


def server_processes(runtime: Path) -> list[int]:
    """Every warm server process (found by its command line) serving under `runtime`."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            mine = "openbotkit.cli.warm import serve" in cmdline and str(runtime) in cmdline
            if mine and _state(int(proc.name)) != "Z":
                found.append(int(proc.name))
    return found


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def children_of(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(proc.name))
    return found


def wait_for(predicate: Callable[[], object], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {predicate}")


@pytest.fixture
def runtime() -> Iterator[Path]:
    """A short private runtime directory (socket paths are limited to ~100 bytes); every server
    started under it is terminated at the end."""
    path = Path(tempfile.mkdtemp(prefix="obkw", dir="/tmp"))
    try:
        yield path
    finally:
        for pid in server_processes(path):
            os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not server_processes(path), timeout=30)
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def env(runtime: Path, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "OBK_CLI_WARM_SECONDS": "120",
        "XDG_RUNTIME_DIR": str(runtime),
        "OBK_HOME": str(tmp_path / "home"),
    }


def warm_up(env: dict[str, str], runtime: Path) -> int:
    """A first (cold) call, then the server it starts; its pid."""
    assert obk(env, *RUN, "list_bots").returncode == 0
    wait_for(lambda: servers(runtime))
    [pid] = servers(runtime)
    return pid


def call_held_open(
    env: dict[str, str], server: int, action: str = "create_bot", **popen: Any
) -> subprocess.Popen[Any]:
    """A call (`create_bot` unless told) whose input comes from stdin, held open so the running
    call can be looked at; returned once the warm server runs it in a child, that is once a
    child of the server has taken the call's stdin (a child that exists may not have it yet)."""
    proc = subprocess.Popen(
        [OBK, *RUN, action, "--data", "-"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        **popen,
    )
    stdin = os.readlink(f"/proc/{proc.pid}/fd/0")

    def taken() -> bool:
        return any(_stdin_of(child) == stdin for child in children_of(server))

    wait_for(taken)
    return proc


def _stdin_of(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/fd/0")
    except OSError:  # gone meanwhile
        return None


def test_a_second_call_runs_in_a_child_of_the_warm_server(
    env: dict[str, str], runtime: Path
) -> None:
    server = warm_up(env, runtime)
    proc = call_held_open(env, server, text=True)
    [child] = children_of(server)
    assert os.readlink(f"/proc/{child}/fd/0") == os.readlink(f"/proc/{proc.pid}/fd/0")
    assert children_of(proc.pid) == []
    out, _ = proc.communicate(json.dumps({"name": "Warm"}), timeout=60)
    assert proc.returncode == 0
    bot = json.loads(out)["data"]["id"]
    fetched = obk(env, *RUN, "fetch_bot", "--data", json.dumps({"botId": bot}))
    assert json.loads(fetched.stdout)["data"]["name"] == "Warm"
    assert servers(runtime) == [server]
    wait_for(lambda: _state(child) == "gone")  # reaped: no zombie left


CASES = {
    "list": ("connector", "list", "--json"),
    "schema": ("connector", "schema", "chatbotkit", "--action", "update_bot"),
    "list_bots": (*RUN, "list_bots"),
    "list_bots_text": ("connector", "run", "chatbotkit", "--action", "list_bots"),
    "fetch_missing": (*RUN, "fetch_bot", "--data", '{"botId": "nope"}'),
    "invalid_input": (*RUN, "list_bots", "--data", '{"take": 0}'),
    "bad_json": (*RUN, "list_bots", "--data", "{"),
    "unknown_action": (*RUN, "no_such_action"),
    "unknown_option": (*RUN, "list_bots", "--nope"),
    "destructive_unconfirmed": (*RUN, "delete_bot", "--data", '{"botId": "nope"}'),
}


def test_warm_calls_print_what_cold_calls_print(env: dict[str, str], runtime: Path) -> None:
    for i in range(3):
        obk(env, *RUN, "create_bot", "--data", json.dumps({"name": f"bot {i}"}))
    cold_env = {**env, "OBK_CLI_WARM_SECONDS": "0"}
    server = warm_up(env, runtime)
    for name, args in CASES.items():
        cold, warm = obk(cold_env, *args), obk(env, *args)
        assert warm.returncode == cold.returncode, name
        assert EXECUTION.sub("", warm.stdout) == EXECUTION.sub("", cold.stdout), name
        assert warm.stderr == cold.stderr, name
    created = [obk(e, *RUN, "create_bot", "--data", '{"name": "x"}') for e in (cold_env, env)]
    assert [c.returncode for c in created] == [0, 0]
    shapes = [re.sub(r'"[0-9a-z]{30}"', '"ID"', c.stdout) for c in created]
    assert shapes[0] == shapes[1] and created[0].stdout != created[1].stdout
    assert servers(runtime) == [server]


def test_the_child_has_the_callers_cwd_and_environment(
    env: dict[str, str], runtime: Path, tmp_path: Path
) -> None:
    warm_up(env, runtime)
    (tmp_path / "input.json").write_text('{"name": "From a file"}')
    made = obk(env, *RUN, "create_bot", "--data", "@input.json", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    # Another database through a variable that does not name another server.
    other = {**env, "OBK_DATABASE_URL": f"sqlite:///{tmp_path / 'other.sqlite3'}"}
    listed = [json.loads(obk(e, *RUN, "list_bots").stdout)["data"]["items"] for e in (env, other)]
    assert [b["name"] for b in listed[0]] == ["From a file"]
    assert listed[1] == []
    bad = obk({**env, "OBK_RETENTION_DAYS": "-1"}, *RUN, "list_bots")
    assert bad.returncode == 1 and "OBK_RETENTION_DAYS" in bad.stderr
    assert len(servers(runtime)) == 1
    # Another OBK_HOME is another server.
    second = {**env, "OBK_HOME": str(tmp_path / "home2")}
    assert obk(second, *RUN, "list_bots").returncode == 0
    wait_for(lambda: len(servers(runtime)) == 2)


def test_a_stale_socket_is_replaced(env: dict[str, str], runtime: Path) -> None:
    first = warm_up(env, runtime)
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: _state(first) in ("gone", "Z"))
    [sock] = runtime.glob("*/*.sock")  # left behind by the killed server
    listed = obk(env, *RUN, "list_bots")
    assert listed.returncode == 0 and json.loads(listed.stdout)["data"]["items"] == []
    wait_for(lambda: [p for p in servers(runtime) if p != first])
    assert sock.exists() and obk(env, *RUN, "list_bots").returncode == 0


def test_parallel_calls_start_one_server_and_all_succeed(
    env: dict[str, str], runtime: Path
) -> None:
    def create(i: int) -> subprocess.CompletedProcess[str]:
        return obk(env, *RUN, "create_bot", "--data", json.dumps({"name": f"p{i}"}))

    with ThreadPoolExecutor(5) as pool:  # cold, racing to start the server
        first = list(pool.map(create, range(5)))
    wait_for(lambda: servers(runtime))
    time.sleep(1)  # the racing starters that lost the lock have left
    wait_for(lambda: len(server_processes(runtime)) == 1, timeout=30)
    with ThreadPoolExecutor(5) as pool:  # warm
        second = list(pool.map(create, range(5, 10)))
    assert [p.returncode for p in first + second] == [0] * 10
    ids = {json.loads(p.stdout)["data"]["id"] for p in first + second}
    listed = json.loads(obk(env, *RUN, "list_bots", "--data", '{"take": 20}').stdout)
    assert {b["id"] for b in listed["data"]["items"]} == ids
    assert len(server_processes(runtime)) == 1


def test_zero_turns_warm_start_off(env: dict[str, str], runtime: Path) -> None:
    off = {**env, "OBK_CLI_WARM_SECONDS": "0"}
    assert obk(off, *RUN, "list_bots").returncode == 0
    time.sleep(2)
    assert server_processes(runtime) == [] and list(runtime.glob("*/*.sock")) == []


def test_the_server_leaves_when_idle(env: dict[str, str], runtime: Path) -> None:
    server = warm_up({**env, "OBK_CLI_WARM_SECONDS": "1"}, runtime)
    wait_for(lambda: _state(server) in ("gone", "Z"), timeout=30)
    assert list(runtime.glob("*/*.sock")) == [] and list(runtime.glob("*/*.pid")) == []


def test_ctrl_c_on_the_client_reaches_the_child(env: dict[str, str], runtime: Path) -> None:
    server = warm_up(env, runtime)
    proc = call_held_open(env, server, stderr=subprocess.PIPE)
    [child] = children_of(server)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert (proc.returncode, err) == (1, b"\naborted\n")  # as a cold call ends on Ctrl-C
    wait_for(lambda: _state(child) == "gone")
    assert servers(runtime) == [server]


def test_the_client_of_a_warm_call_imports_no_cli_stack(env: dict[str, str], runtime: Path) -> None:
    warm_up(env, runtime)
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *RUN, "list_bots"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["data"]["items"] == []
    loaded = {m.split(".")[0] for m in proc.stderr.strip().splitlines()[-1].split()}
    assert loaded & {"click", "pydantic", "sqlalchemy", "numpy"} == set()


def test_a_stopped_server_finishes_the_calls_it_runs(env: dict[str, str], runtime: Path) -> None:
    server = warm_up(env, runtime)
    proc = call_held_open(env, server, text=True)
    os.kill(server, signal.SIGTERM)
    wait_for(lambda: not list(runtime.glob("*/*.sock")))  # new calls run cold meanwhile
    assert obk(env, *RUN, "list_bots").returncode == 0
    out, _ = proc.communicate('{"name": "Late"}', timeout=60)
    assert proc.returncode == 0 and json.loads(out)["data"]["id"]
    wait_for(lambda: _state(server) in ("gone", "Z"))


def test_modules_planted_in_the_callers_directory_are_never_imported(
    env: dict[str, str], runtime: Path, tmp_path: Path
) -> None:
    """`pydantic` is imported by the warm server as it starts (from the directory of the call
    that starts it), `onnxruntime` by a child (after it moved into the caller's directory, with
    the caller's secrets in its environment) when a record is embedded."""
    here = tmp_path / "project"
    here.mkdir()
    markers = {name: tmp_path / f"imported-{name}" for name in ("pydantic", "onnxruntime")}
    for name, marker in markers.items():
        (here / f"{name}.py").write_text(f"open({str(marker)!r}, 'w').write(__file__)\n")
    env = {**env, "PYTHONDONTWRITEBYTECODE": "1"}
    assert obk(env, *RUN, "list_bots", cwd=here).returncode == 0  # cold; starts the server

    def imported() -> list[str]:
        return [name for name, marker in markers.items() if marker.exists()]

    wait_for(lambda: servers(runtime) or imported())
    assert imported() == []
    [server] = servers(runtime)
    dataset = obk(env, *RUN, "create_dataset", "--data", '{"name": "kb"}', cwd=here)
    assert dataset.returncode == 0, dataset.stderr
    record = {"datasetId": json.loads(dataset.stdout)["data"]["id"], "text": "Lisbon."}
    proc = call_held_open(env, server, "create_dataset_record", cwd=here, text=True)
    out, _ = proc.communicate(json.dumps(record), timeout=300)
    assert proc.returncode == 0 and json.loads(out)["data"]["id"]
    assert imported() == []
    assert servers(runtime) == [server]


def test_malformed_requests_leave_the_server_serving(env: dict[str, str], runtime: Path) -> None:
    server = warm_up(env, runtime)
    [path] = runtime.glob("*/*.sock")
    null = os.open(os.devnull, os.O_RDWR)
    framed = [b"[]", b'{"argv": 1, "cwd": 2, "env": 3}', b'{"argv": ["obk"]}', b"[" * 100_000]
    framed += [b"\xff not json", b'{"argv": ["obk"], "cwd": "/", "env": {"A": 1}}']
    try:
        for body in framed:  # with the three descriptors a call hands over
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.connect(str(path))
                message = struct.pack("!I", len(body)) + body
                sent = socket.send_fds(sock, [message], [null, null, null])
                try:
                    sock.sendall(message[sent:])
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the server may drop a bad request before reading all of it
                assert _closed_without_reply(sock)  # dropped, no child started
        for raw in (b"", b"garbage", struct.pack("!I", 1 << 30) + b"{"):  # no descriptors
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.connect(str(path))
                sock.sendall(raw)
                sock.shutdown(socket.SHUT_WR)
                assert sock.recv(4) == b""
    finally:
        os.close(null)
    proc = call_held_open(env, server, text=True)  # still served warm, by the same server
    out, _ = proc.communicate('{"name": "After"}', timeout=60)
    assert proc.returncode == 0 and json.loads(out)["data"]["id"]
    assert servers(runtime) == [server]


@pytest.mark.parametrize("value", ["inf", "86401", "1e9", "nan", "-1", "ten"])
def test_an_out_of_range_warm_lifetime_is_an_error_naming_it(
    env: dict[str, str], runtime: Path, value: str
) -> None:
    """Refused rather than clamped: a value past a day is most likely a unit slip."""
    called = obk({**env, "OBK_CLI_WARM_SECONDS": value}, *RUN, "list_bots")
    assert called.returncode == 1
    assert "invalid_input" in called.stderr and "OBK_CLI_WARM_SECONDS" in called.stderr
    time.sleep(1)
    assert server_processes(runtime) == []


def test_the_warm_lifetimes_bound_is_the_settings_bound(tmp_path: Path) -> None:
    assert warm.lifetime({warm.ENV: str(warm.MAX_SECONDS)}) == warm.MAX_SECONDS
    assert warm.lifetime({warm.ENV: str(warm.MAX_SECONDS + 1)}) is None
    Settings(home=tmp_path, cli_warm_seconds=warm.MAX_SECONDS)
    with pytest.raises(ValidationError):
        Settings(home=tmp_path, cli_warm_seconds=warm.MAX_SECONDS + 1)


def _closed_without_reply(sock: socket.socket) -> bool:
    """Whether the peer closed the connection without sending anything (a reset counts)."""
    try:
        return sock.recv(4) == b""
    except ConnectionResetError:
        return True

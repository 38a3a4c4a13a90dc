"""Warm start for connector calls: a fork server that has already imported the CLI stack.

An agent runs `obk connector ...` once per action, and a fresh Python process spends most of such
a call importing click, pydantic and SQLAlchemy. So, like Gradle's daemon or Android's zygote, a
background process imports them once (modules only: no engine, no connection, no thread, no ONNX
session) and `fork()`s a child per call. The client hands over its standard input, output and
error (file descriptors, `socket.send_fds`), argv, cwd and whole environment; the child takes
them, runs the same click command a cold call would run and exits with its status, which the
server sends back with the child's pid (the client forwards SIGINT/SIGTERM/SIGHUP to it). The
child reads settings from the client's environment, so every variable behaves as on a cold call.

When nothing answers, the call runs cold and then starts the server, detached, for the next one.
The server lives `OBK_CLI_WARM_SECONDS` (default 600, at most a day) after its last call; `0`
disables it all, and a value out of range runs the call cold, whose settings then refuse it.
Its socket is private to the user (a 0700 directory, a 0600 socket, the peer's uid checked) and
named by a hash of OBK_HOME, the interpreter, the installed version and the sources' mtimes, so
an upgrade or an edited source never runs stale code. A lock held for the server's life makes
two racing starts leave one server; only the lock holder replaces a stale socket file.

The server imports nothing from the directory a call comes from: it starts with Python's safe path
(`-P`: no script or working directory on `sys.path`) from `/`, keeps only absolute `sys.path`
entries, and so neither it nor a child (which moves into the caller's directory and imports the
modules a command needs lazily, with the caller's secrets in its environment) can be handed a
planted `pydantic.py`. A request that is not a well-formed call is dropped, never fatal.

The client side (`place_for`, `call`, `start`) imports the standard library only.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import stat
import struct
import sys
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, NoReturn, TypeGuard

ENV = "OBK_CLI_WARM_SECONDS"
DEFAULT_SECONDS = 600.0
# A warm server keeps the first caller's environment for its life: more than a day is more likely
# a unit slip (milliseconds) than a wish. Settings refuses larger values with this same bound.
MAX_SECONDS = 86_400.0
# A request is argv, cwd and the environment: a few kilobytes, at most the kernel's ARG_MAX.
MAX_REQUEST_BYTES = 8 << 20
# `obk connector` subcommands served warm: the per-action ones an agent repeats.
WARM_COMMANDS = ("run", "schema", "list")
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_LENGTH = struct.Struct("!I")
_INT = struct.Struct("!i")
# Imported by the server before it forks (missing optional ones are skipped): the click app,
# settings, the engine and its tables, every action module, the embedder's modules. Not
# onnxruntime: importing it starts a native thread, and a process with threads must not fork.
PRELOAD = (
    "openbotkit.cli.app",
    "openbotkit.cli.connector",
    "openbotkit.cli.state",
    "openbotkit.settings",
    "openbotkit.engine",
    "openbotkit.store.tables",
    "openbotkit.services.retention",
    "sqlite3",
    "openbotkit.retrieval.onnx_embedder",
    "numpy",
    "tokenizers",
)


class Place(NamedTuple):
    """Where one server (one OBK_HOME, interpreter and code version) listens (not a dataclass:
    importing dataclasses costs the client more than the rest of this module)."""

    socket: str
    lock: str
    pid: str


def lifetime(env: Mapping[str, str]) -> float | None:
    """The idle lifetime asked for, or None for a value the settings will reject (not a number,
    negative, NaN, or above MAX_SECONDS, infinity included)."""
    raw = env.get(ENV, "").strip()
    if not raw:
        return DEFAULT_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        return None
    return seconds if 0 <= seconds <= MAX_SECONDS else None


def place_for(args: Sequence[str], env: Mapping[str, str]) -> Place | None:
    """The server for this call, or None when it must run cold (not a warm command, warm start
    off or misconfigured, no private directory)."""
    if len(args) < 2 or args[0] != "connector" or args[1] not in WARM_COMMANDS:
        return None
    seconds = lifetime(env)
    if not seconds:
        return None
    directory = _private_dir(env)
    if directory is None:
        return None
    home = env.get("OBK_HOME", "")
    parts = (os.path.abspath(home) if home else "", sys.executable, _version(), _source_stamp())
    key = hashlib.sha256("\0".join(parts).encode("utf-8", "surrogateescape")).hexdigest()[:24]
    base = os.path.join(directory, key)
    return Place(socket=base + ".sock", lock=base + ".lock", pid=base + ".pid")


def _private_dir(env: Mapping[str, str]) -> str | None:
    """A directory only this user can enter (created 0700; refused if anyone else could)."""
    runtime = env.get("XDG_RUNTIME_DIR") or env.get("TMPDIR") or "/tmp"
    directory = os.path.join(runtime, f"openbotkit-{os.getuid()}")
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    st = os.lstat(directory)  # a symbolic link is refused too
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None
    return directory


def _package_dir() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _source_stamp() -> str:
    """The newest mtime and the count of the package's source and data files: any edit (or a
    reinstall, which rewrites them) names a new server."""
    newest, count = 0, 0
    for root, dirs, files in os.walk(_package_dir()):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            if name.endswith((".py", ".json")):
                newest = max(newest, os.stat(os.path.join(root, name)).st_mtime_ns)
                count += 1
    return f"{newest}:{count}"


def _version() -> str:
    """The installed distribution's name and version (its dist-info directory), read without
    importlib.metadata, which costs more than the rest of the client."""
    for entry in sys.path:
        if entry.endswith("-packages") and os.path.isdir(entry):
            for name in os.listdir(entry):
                if name.startswith("openbotkit-") and name.endswith(".dist-info"):
                    return name
    return ""


# -- client -------------------------------------------------------------------------------------


def call(place: Place, argv: Sequence[str]) -> int | None:
    """Run the call in a warm child; its exit code (negative: killed by that signal), or None
    when no server took the call (it never ran, so running it cold is safe)."""
    try:
        request = json.dumps({"argv": list(argv), "cwd": os.getcwd(), "env": dict(os.environ)})
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    except OSError:
        return None
    with sock:
        try:
            sock.connect(place.socket)
            payload = request.encode("utf-8", "surrogateescape")
            message = _LENGTH.pack(len(payload)) + payload
            sent = socket.send_fds(sock, [message], [0, 1, 2])
            sock.sendall(message[sent:])
            started = _recv_int(sock)
        except OSError:
            return None
        if started is None:
            return None
        pid = started
        previous = {
            sig: signal.signal(sig, lambda sig, _frame: _forward(pid, sig)) for sig in FORWARDED
        }
        try:
            status = _recv_int(sock)
        except OSError:
            status = None
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if status is None:  # the server died while the child ran: the outcome is unknown
            print("error: internal_error: the warm obk process ended unexpectedly", file=sys.stderr)
            return 1
        return status


def _forward(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _recv_int(sock: socket.socket) -> int | None:
    data = b""
    while len(data) < _INT.size:
        chunk = sock.recv(_INT.size - len(data))
        if not chunk:
            return None
        data += chunk
    value: int = _INT.unpack(data)[0]
    return value


def exit_like(code: int) -> NoReturn:
    """End this process as the child ended: with its status, or killed by its signal."""
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        code = 128 - code
    sys.exit(code)


def start(place: Place) -> None:
    """Start a server for the next call, detached (its own session, no stdio); one that finds
    another holding the lock exits at once."""
    import subprocess

    code = "import sys; from openbotkit.cli.warm import serve; serve(*sys.argv[1:])"
    try:
        # -P: `python -c` would put the working directory first on sys.path, and a module
        # planted where the caller runs `obk` would be imported in place of pydantic.
        subprocess.Popen(
            [sys.executable, "-P", "-c", code, place.socket, place.lock, place.pid],
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
    except OSError:
        pass


# -- server -------------------------------------------------------------------------------------


def serve(sock_path: str, lock_path: str, pid_path: str) -> None:
    """The server: take the lock (or leave), import the stack, listen, fork a child per call,
    report each child's status, and exit after the idle lifetime or on SIGTERM."""
    import fcntl

    lock = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return
    _absolute_path_only()
    seconds = lifetime(os.environ) or DEFAULT_SECONDS
    _preload()
    if os.path.isdir("/proc/self/task") and len(os.listdir("/proc/self/task")) > 1:
        return  # a preloaded module started a thread: forking would be unsafe, stay cold
    try:
        os.unlink(sock_path)  # a dead server's socket: only the lock holder may remove it
    except FileNotFoundError:
        pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        listener.bind(sock_path)
    finally:
        os.umask(old_umask)
    listener.listen(64)
    tmp = f"{pid_path}.{os.getpid()}"
    with open(tmp, "w") as fh:
        fh.write(str(os.getpid()))
    os.replace(tmp, pid_path)
    try:
        _Server(listener, sock_path, seconds).loop()
    finally:
        for path in (sock_path, pid_path):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        listener.close()
        os.close(lock)


def _absolute_path_only() -> None:
    """Drop the relative entries of sys.path (`""` is the working directory): a child moves into
    the caller's directory, and a relative entry would then import from there."""
    sys.path[:] = [entry for entry in sys.path if os.path.isabs(entry)]
    sys.path_importer_cache.clear()


def _preload() -> None:
    """Import what calls need, with the collector off, then freeze it out of later passes (the
    children share these pages copy-on-write and never scan them)."""
    import gc
    import importlib

    # OpenBLAS starts a thread pool when numpy is imported, and a process with threads must not
    # fork; one-shot calls gain nothing from a pool. Children see the caller's environment.
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    gc.disable()
    from openbotkit.actions.index import MODULES

    for module in (*PRELOAD, *dict.fromkeys(MODULES.values())):
        try:
            importlib.import_module(module)
        except ImportError:
            pass
    gc.freeze()
    gc.enable()


class _Server:
    """The accept loop: one selector over the listener, a wake-up pipe for signals and the
    connections of running children (EOF there means the client died: hang up its child)."""

    def __init__(self, listener: socket.socket, sock_path: str, seconds: float) -> None:
        import selectors

        self.listener = listener
        self.sock_path = sock_path
        self.seconds = seconds
        self.children: dict[int, socket.socket] = {}
        self.stopping = False
        self.selector = selectors.DefaultSelector()
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        signal.set_wakeup_fd(self.wake_w.fileno())
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        self.selector.register(listener, selectors.EVENT_READ, None)
        self.selector.register(self.wake_r, selectors.EVENT_READ, None)

    def _stop(self, _sig: int, _frame: Any) -> None:
        """Take no more calls (new ones find no socket and run cold); wait for running ones."""
        if not self.stopping:
            self.stopping = True
            self.selector.unregister(self.listener)
            try:
                os.unlink(self.sock_path)
            except FileNotFoundError:
                pass

    def loop(self) -> None:
        import time

        idle_since = time.monotonic()
        while not (self.stopping and not self.children):  # running calls finish first
            timeout = None
            if not self.children:
                timeout = idle_since + self.seconds - time.monotonic()
                if timeout <= 0:
                    break
            for key, _ in self.selector.select(timeout):
                if key.fileobj is self.listener:
                    self._accept()
                elif key.fileobj is self.wake_r:
                    try:
                        while self.wake_r.recv(512):
                            pass
                    except BlockingIOError:
                        pass
                else:
                    self._client_event(key.fileobj, key.data)  # type: ignore[arg-type]
            if self._reap():
                idle_since = time.monotonic()

    def _accept(self) -> None:
        import selectors

        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        fds: list[int] = []
        try:
            creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            if struct.unpack("3i", creds)[1] != os.getuid():
                raise PermissionError("another user")
            conn.settimeout(10)
            data, fds, _flags, _addr = socket.recv_fds(conn, 1 << 16, 3)
            request = _parse_request(conn, data, fds)
        except Exception:  # whatever a client sends, the server keeps serving the others
            for fd in fds:
                os.close(fd)
            conn.close()
            return
        asked = lifetime(request["env"])
        if asked:
            self.seconds = asked  # the latest caller's setting rules the idle lifetime
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            self._child(conn, fds, request)
        for fd in fds:
            os.close(fd)
        try:
            conn.sendall(_INT.pack(pid))
        except OSError:
            pass
        conn.setblocking(False)
        self.children[pid] = conn
        self.selector.register(conn, selectors.EVENT_READ, pid)

    def _client_event(self, conn: socket.socket, pid: int) -> None:
        try:
            data = conn.recv(64)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the client is gone, as a terminal that hangs up
            self.selector.unregister(conn)
            _forward(pid, signal.SIGHUP)

    def _reap(self) -> bool:
        reaped = False
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return reaped
            if pid == 0:
                return reaped
            reaped = True
            conn = self.children.pop(pid, None)
            if conn is None:
                continue
            try:
                self.selector.unregister(conn)
            except (KeyError, ValueError):
                pass
            try:
                conn.setblocking(True)
                conn.sendall(_INT.pack(os.waitstatus_to_exitcode(status)))
            except OSError:
                pass
            conn.close()

    def _child(self, conn: socket.socket, fds: list[int], request: dict[str, Any]) -> NoReturn:
        """Become the client's process: its stdio, cwd, environment and argv; run the command."""
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGHUP, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self.selector.close()
            for sock in (conn, self.listener, self.wake_r, self.wake_w, *self.children.values()):
                sock.close()
            for target, fd in zip((0, 1, 2), fds, strict=True):
                os.dup2(fd, target)
            for fd in fds:
                if fd > 2:
                    os.close(fd)
            os.chdir(request["cwd"])
            os.environ.clear()
            os.environ.update(request["env"])
            sys.argv = list(request["argv"])
            _reopen_stdio()
            code = _run_cli()
        except BaseException:  # nothing may escape into the server's loop
            code = 1
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)


def _parse_request(conn: socket.socket, data: bytes, fds: list[int]) -> dict[str, Any]:
    """The call a client sent (the rest of it read from `conn`): its three descriptors, then
    argv, cwd and env as JSON, each of the type the child relies on; ValueError otherwise."""
    if len(data) < _LENGTH.size or len(fds) != 3:
        raise ValueError("not a request")
    (length,) = _LENGTH.unpack(data[: _LENGTH.size])
    if length > MAX_REQUEST_BYTES:
        raise ValueError("request too long")
    data = data[_LENGTH.size :]
    while len(data) < length:
        chunk = conn.recv(min(1 << 16, length - len(data)))
        if not chunk:
            raise ValueError("short request")
        data += chunk
    request = json.loads(data.decode("utf-8", "surrogateescape"))
    if not _is_call(request):
        raise ValueError("not a call")
    return request


def _is_call(request: object) -> TypeGuard[dict[str, Any]]:
    """argv (a non-empty list of strings), cwd (a string), env (strings by name)."""
    if not isinstance(request, dict):
        return False
    argv, cwd, env = request.get("argv"), request.get("cwd"), request.get("env")
    return (
        isinstance(argv, list)
        and bool(argv)
        and all(isinstance(arg, str) for arg in argv)
        and isinstance(cwd, str)
        and isinstance(env, dict)
        and all(isinstance(value, str) for value in env.values())
    )


def _reopen_stdio() -> None:
    """New standard streams on the client's descriptors, buffered as Python sets them up for a
    fresh process (line-buffered output on a terminal, stderr always line-buffered)."""
    import io

    unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))
    streams = []
    for fd, old in ((0, sys.stdin), (1, sys.stdout), (2, sys.stderr)):
        raw = io.FileIO(fd, "rb" if fd == 0 else "wb", closefd=False)
        buffered = io.BufferedReader(raw) if fd == 0 else io.BufferedWriter(raw)
        streams.append(
            io.TextIOWrapper(
                buffered,
                encoding=old.encoding,
                errors=old.errors,
                line_buffering=fd == 2 or (fd == 1 and os.isatty(fd)),
                write_through=unbuffered and fd != 0,
            )
        )
    sys.stdin, sys.stdout, sys.stderr = streams


def _run_cli() -> int:
    """The click app, ended as the interpreter ends a script: SystemExit's code, a traceback and
    status 1 for an uncaught error, death by SIGINT for an uncaught KeyboardInterrupt."""
    import atexit

    from openbotkit.cli.app import run

    code = 0
    try:
        run()
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt:
        sys.excepthook(*sys.exc_info())
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    except BaseException:
        sys.excepthook(*sys.exc_info())
        code = 1
    atexit._run_exitfuncs()
    return code

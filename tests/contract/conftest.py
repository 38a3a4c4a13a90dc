"""A real `obk serve` on loopback, with two accounts' secrets, shared by the contract suite."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from openbotkit.settings import ENV_VARS
from tests.conftest import BACKENDS, new_bucket, new_postgres_database
from tests.pg import PostgresServer
from tests.reliability.serving import READY_PATH, create_secret, running, serve_args
from tests.server.serving import free_port

BIN = Path(sys.executable).parent
OBK = shutil.which("obk", path=str(BIN)) or "obk"


COVERAGE_TEST = "test_every_action_is_answered_over_http"


def _server_param(item: pytest.Item) -> object:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("live_server") if callspec is not None else None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The coverage check reads what every other contract test did against the same server,
    so each backend's runs right after that backend's last test (after pytest has grouped the
    tests by server)."""
    checks = [item for item in items if getattr(item, "originalname", "") == COVERAGE_TEST]
    rest = [item for item in items if item not in checks]
    for check in checks:
        same = [n for n, item in enumerate(rest) if _server_param(item) == _server_param(check)]
        rest.insert((same[-1] + 1) if same else len(rest), check)
    items[:] = rest


@dataclass(frozen=True)
class LiveServer:
    url: str
    token_a: str
    token_b: str
    home: Path
    settings_env: dict[str, str] = field(default_factory=dict)
    database_url: str | None = None

    def env(self) -> dict[str, str]:
        """The environment a client subprocess needs (the obk CLI, node)."""
        return {**_env(self.home, self.database_url), **self.settings_env}


def _env(home: Path, database_url: str | None) -> dict[str, str]:
    env = {**os.environ, "OBK_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    if database_url:
        env["OBK_DATABASE_URL"] = database_url
    return env


@pytest.fixture(scope="session", params=BACKENDS)
def live_server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[LiveServer]:
    """`obk serve` on each database: the contract suite runs once per backend."""
    home = tmp_path_factory.mktemp(f"serve-home-{request.param}")
    database_url = None
    if request.param == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        database_url = new_postgres_database(server, "obk_contract").url
    yield from _serve(home, database_url, {})


@pytest.fixture(scope="session")
def live_server_s3(
    tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str
) -> Iterator[LiveServer]:
    """`obk serve` on SQLite with file contents in a bucket of the test S3 server."""
    fields = new_bucket(s3_endpoint)
    settings_env = {var: str(fields[name]) for var, name in ENV_VARS.items() if name in fields}
    yield from _serve(tmp_path_factory.mktemp("serve-home-s3"), None, settings_env)


def _serve(
    home: Path, database_url: str | None, settings_env: dict[str, str]
) -> Iterator[LiveServer]:
    env = {**_env(home, database_url), **settings_env}
    token_a, token_b = create_secret(env, "account-a"), create_secret(env, "account-b")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # Access lines (log level info) let test_coverage.py see which routes clients reached.
    args = serve_args(port, "--host", "127.0.0.1", "--log-level", "info")
    with running(args, env, home / "serve.log", url + READY_PATH):
        yield LiveServer(url, token_a, token_b, home, settings_env, database_url)

"""Shared fixtures: a fresh OBK_HOME per test, an engine on a real database, an action runner.

Every test that uses `settings` (and so `engine`, `run`, ...) runs twice: on a SQLite file and on
a fresh PostgreSQL database (`db_backend`). The PostgreSQL copies carry the `postgresql` marker,
so `make test` can run them in a process of their own beside the rest.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from openbotkit.engine import Engine
from openbotkit.models.bundled import SMOLLM2, ModelCache
from openbotkit.models.llamacpp import LlamaCppProvider
from openbotkit.models.providers import LLMProvider
from openbotkit.retrieval.embedders import Embedder
from openbotkit.retrieval.onnx_embedder import OnnxEmbedder
from openbotkit.settings import Settings
from openbotkit.store import Store
from tests.pg import PostgresServer, start_server
from tests.server.serving import free_port

RunAction = Callable[..., dict[str, Any]]
TEST_MODEL = SMOLLM2.name


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache (the exported ONNX embedder) for the session and the `obk` it starts."""
    return tmp_path_factory.mktemp("obk-cache")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may touch the user's real data directory or a configured server."""
    for key in list(os.environ):
        if key.startswith(("CHATBOTKIT_", "OBK_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("OBK_HOME", str(tmp_path / "obk-home"))
    monkeypatch.setenv("OBK_CACHE_DIR", str(cache_dir))
    # No `obk` a test starts may leave a warm process behind (tests/cli/test_warm.py opts in).
    monkeypatch.setenv("OBK_CLI_WARM_SECONDS", "0")
    # Tests that do not judge answers run on the small bundled model (tests/answers use the
    # default one): same code path, a tenth of the time.
    monkeypatch.setenv("OBK_DEFAULT_MODEL", TEST_MODEL)


BACKENDS = ("sqlite", "postgresql")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the PostgreSQL copy of every parametrized test (`-m postgresql` selects them)."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "postgresql" in callspec.params.values():
            item.add_marker(pytest.mark.postgresql)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """PostgreSQL 18 + pgvector, started once per session, only if a test asks for it."""
    server = start_server()
    yield server
    server.stop()


@dataclass(frozen=True)
class PostgresDatabase:
    url: str
    tables: tuple[str, ...]

    def empty(self) -> None:
        """Delete every row (the schema stays): a few ms, where CREATE DATABASE takes a second.
        Foreign keys are not checked meanwhile (replica role), so the order does not matter."""
        statements = [f"DELETE FROM {t}" for t in self.tables]
        with psycopg.connect(libpq_url(self.url), autocommit=True) as conn:
            conn.execute(
                "SET session_replication_role = replica; "
                + "; ".join(statements)
                + "; SET session_replication_role = DEFAULT"
            )


def libpq_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def new_postgres_database(server: PostgresServer, name: str) -> PostgresDatabase:
    """A new database with every migration applied."""
    with psycopg.connect(libpq_url(server.url()), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    store = Store(server.url(name))
    store.migrate()
    with store.session(write=False) as session:
        tables = session.scalars(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
        )
        found = tuple(t for t in tables if t != "alembic_version")
    store.dispose()
    return PostgresDatabase(server.url(name), found)


@pytest.fixture(scope="session")
def postgres_database(postgres_server: PostgresServer) -> PostgresDatabase:
    """The session's database; every test that uses it starts with it empty."""
    return new_postgres_database(postgres_server, "obk_test")


@pytest.fixture(params=BACKENDS)
def db_backend(request: pytest.FixtureRequest) -> str:
    """The database a test's `settings` point at."""
    return str(request.param)


@pytest.fixture
def database_url(db_backend: str, request: pytest.FixtureRequest) -> str | None:
    """None for the default (a SQLite file in OBK_HOME), else the session's PostgreSQL
    database, emptied."""
    if db_backend == "sqlite":
        return None
    database: PostgresDatabase = request.getfixturevalue("postgres_database")
    database.empty()
    return database.url


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None, monkeypatch: pytest.MonkeyPatch) -> Settings:
    if database_url:
        # `obk` processes a test starts use the same database.
        monkeypatch.setenv("OBK_DATABASE_URL", database_url)
    return Settings(home=tmp_path / "obk-home", database_url=database_url, default_model=TEST_MODEL)


# -- blob stores: the local directory and S3 (moto's server, a real HTTP endpoint) -------------

BLOB_KINDS = ["file", "s3"]
S3_CREDENTIALS = {
    "aws_access_key_id": "obk-test-key",
    "aws_secret_access_key": "obk-test-secret",
    "aws_region": "eu-west-1",
}


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """An S3 server (moto) on a free loopback port, for the whole session."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def new_bucket(endpoint: str) -> dict[str, Any]:
    """Settings fields for a fresh, empty bucket on the test S3 server."""
    import boto3

    name = f"obk-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=S3_CREDENTIALS["aws_region"],
        aws_access_key_id=S3_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=S3_CREDENTIALS["aws_secret_access_key"],
    )
    client.create_bucket(
        Bucket=name,
        CreateBucketConfiguration={"LocationConstraint": S3_CREDENTIALS["aws_region"]},
    )
    return {"blob_url": f"s3://{name}/files", "aws_endpoint_url": endpoint, **S3_CREDENTIALS}


def blob_fields(request: pytest.FixtureRequest, kind: str) -> dict[str, Any]:
    """Settings fields selecting a blob store of `kind` ("file": the default directory)."""
    if kind == "file":
        return {}
    return new_bucket(request.getfixturevalue("s3_endpoint"))


@pytest.fixture(params=BLOB_KINDS)
def blob_kind(request: pytest.FixtureRequest) -> str:
    """Parametrizes a test over the local and the S3 blob store (see `blob_settings`)."""
    return str(request.param)


@pytest.fixture
def blob_settings(
    request: pytest.FixtureRequest, blob_kind: str, settings: Settings
) -> Callable[..., Settings]:
    """The test's settings (its database) with `fields` and the test's blob store (a fresh
    bucket on each call for S3)."""

    def make(**fields: Any) -> Settings:
        return Settings(**{**settings.model_dump(), **blob_fields(request, blob_kind), **fields})

    return make


@pytest.fixture(scope="session")
def local_embedder(cache_dir: Path) -> Embedder:
    """The bundled MiniLM (int8 ONNX, as installed by default), loaded once for the session."""
    return OnnxEmbedder(cache_dir)


@pytest.fixture(scope="session")
def local_llm(cache_dir: Path) -> Iterator[LLMProvider]:
    """The bundled SmolLM2 through llama.cpp, loaded once for the whole test session."""
    provider = LlamaCppProvider.bundled(SMOLLM2, ModelCache(cache_dir / "models"))
    yield provider
    provider.close()


@pytest.fixture
def engine(
    settings: Settings, local_embedder: Embedder, local_llm: LLMProvider
) -> Iterator[Engine]:
    # The embedder and local model the runtime would build, loaded once and shared across tests.
    eng = Engine(settings, embedder=local_embedder, local_llms=[local_llm])
    yield eng
    eng.close()


def make_runner(engine: Engine, account: str) -> RunAction:
    """Run actions as `account` through the Python API (`Engine.execute`)."""

    def run(name: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        return engine.execute(name, data, account=account)

    return run


@pytest.fixture
def run(engine: Engine) -> RunAction:
    """Run an action as account 'alice' and return its JSON output."""
    return make_runner(engine, "alice")


@pytest.fixture
def run_bob(engine: Engine) -> RunAction:
    """Run an action as account 'bob'."""
    return make_runner(engine, "bob")

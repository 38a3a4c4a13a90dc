"""What operators expect of a server: health and readiness probes, CORS, logs on stderr."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from starlette.testclient import TestClient

from openbotkit.engine import Engine
from openbotkit.errors import InvalidInput
from openbotkit.logs import configure_logging
from openbotkit.server.app import create_app
from openbotkit.services.secrets import create_secret
from openbotkit.settings import Settings
from tests.conftest import libpq_url, new_postgres_database
from tests.contract.conftest import OBK
from tests.pg import PostgresServer
from tests.reliability.serving import running
from tests.server.serving import free_port


def client_for(settings: Settings) -> tuple[TestClient, Engine]:
    engine = Engine(settings)
    return TestClient(create_app(settings, engine)), engine


def test_healthz_and_readyz_need_no_secret(settings: Settings) -> None:
    client, engine = client_for(settings)
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    assert client.get("/api/v1/bot/list").status_code == 401
    engine.close()


def test_readyz_is_503_when_the_database_is_gone(
    settings: Settings, db_backend: str, request: pytest.FixtureRequest
) -> None:
    if db_backend == "postgresql":  # a database of its own, dropped under the running app
        server: PostgresServer = request.getfixturevalue("postgres_server")
        gone = new_postgres_database(server, "obk_gone")
        settings = settings.model_copy(update={"database_url": gone.url})
    client, engine = client_for(settings)
    engine.store.dispose()
    if db_backend == "postgresql":
        with psycopg.connect(libpq_url(server.url()), autocommit=True) as conn:
            conn.execute("DROP DATABASE obk_gone WITH (FORCE)")
    else:
        shutil.rmtree(settings.home)  # the SQLite file and its directory: nothing to open
    resp = client.get("/readyz")
    assert resp.status_code == 503 and resp.json()["status"] == "unavailable"
    assert client.get("/healthz").status_code == 200  # alive, just not ready
    engine.close()


def test_cors_only_for_the_configured_origins(settings: Settings) -> None:
    shop = "https://shop.example"
    client, engine = client_for(settings.model_copy(update={"cors_origins": f"{shop}, x"}))
    token = create_secret(engine.runtime, "alice")[1]
    preflight = client.options(
        "/api/v1/bot/create",
        headers={
            "Origin": shop,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == shop
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    denied = client.options(
        "/api/v1/bot/list",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert denied.status_code == 400 and "access-control-allow-origin" not in denied.headers
    resp = client.get(
        "/api/v1/bot/fetch-nothing", headers={"Origin": shop, "Authorization": f"Bearer {token}"}
    )
    assert resp.headers["access-control-allow-origin"] == shop
    assert "x-failure-code" in resp.headers["access-control-expose-headers"].lower()
    engine.close()
    plain, engine = client_for(settings)
    assert (
        "access-control-allow-origin" not in plain.get("/healthz", headers={"Origin": shop}).headers
    )
    engine.close()


def test_the_widget_keeps_its_cors_when_origins_are_configured(settings: Settings) -> None:
    """OBK_CORS_ORIGINS limits the API as a whole; the widget's routes still answer any site
    (the widget is embedded on pages the operator does not list)."""
    shop, blog = "https://shop.example", "https://someones-blog.example"
    client, engine = client_for(settings.model_copy(update={"cors_origins": shop}))
    token = create_secret(engine.runtime, "alice")[1]
    for origin in (shop, blog):
        preflight = client.options(
            "/api/v1/conversation/create",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 204, origin
        assert preflight.headers["access-control-allow-origin"] == "*"
        created = client.post(
            "/api/v1/conversation/create",
            json={},
            headers={"Origin": origin, "Authorization": f"Bearer {token}"},
        )
        assert created.status_code == 200
        assert created.headers["access-control-allow-origin"] == "*"
        assert (
            client.get("/widget.js", headers={"Origin": origin}).headers[
                "access-control-allow-origin"
            ]
            == "*"
        )
    listed = client.get(
        "/api/v1/bot/list", headers={"Origin": blog, "Authorization": f"Bearer {token}"}
    )
    assert listed.status_code == 200 and "access-control-allow-origin" not in listed.headers
    listed = client.get(
        "/api/v1/bot/list", headers={"Origin": shop, "Authorization": f"Bearer {token}"}
    )
    assert listed.headers["access-control-allow-origin"] == shop
    engine.close()


def test_bad_setting_names_the_variable() -> None:
    with pytest.raises(InvalidInput, match="OBK_LOG_FORMAT") as err:
        Settings.from_env({"OBK_HOME": "/tmp/h", "OBK_LOG_FORMAT": "xml"})
    assert err.value.details[0].pointer == "/OBK_LOG_FORMAT"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_log_level_filters_and_json_lines_carry_extra_fields(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("warning", "json")
    log = logging.getLogger("openbotkit.worker")
    log.info("not shown")
    log.warning("job %s failed", "j1", extra={"jobId": "j1"})
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert line["level"] == "warning" and line["logger"] == "openbotkit.worker"
    assert line["message"] == "job j1 failed" and line["jobId"] == "j1"
    assert line["time"].endswith("Z")
    configure_logging("debug", "text")
    log.debug("shown")
    assert "DEBUG   openbotkit.worker: shown" in capsys.readouterr().err


def test_obk_serve_logs_json_access_lines_on_stderr(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "OBK_HOME": str(home), "OBK_LOG_FORMAT": "json", "HF_HUB_OFFLINE": "1"}
    made = subprocess.run(
        [OBK, "secret", "create", "--account", "a", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    secret = json.loads(made.stdout)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    # The default log level (info): access lines are what this test reads, on stderr only.
    args = [OBK, "serve", "--port", str(port), "--no-worker"]
    with running(args, env, log, url + "/healthz", stdout=subprocess.DEVNULL):
        auth = {"Authorization": f"Bearer {secret['token']}"}
        assert httpx.get(url + "/api/v1/bot/list?take=1", headers=auth).status_code == 200
    err = log.read_text()
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]
    access = [x for x in lines if x["logger"] == "openbotkit.access"]
    listed = next(x for x in access if x["path"] == "/api/v1/bot/list")
    assert listed["method"] == "GET" and listed["status"] == 200
    assert listed["keyId"] == secret["id"] and listed["durationMs"] >= 0
    assert "take" not in listed["message"]  # no query strings (signed URLs carry secrets)
    assert any(x["logger"].startswith("uvicorn") for x in lines)  # uvicorn's own, as JSON too

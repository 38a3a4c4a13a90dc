"""The ASGI app of `obk serve`: ChatBotKit API v1 routes generated from the action registry,
and the same actions as MCP tools at `/mcp`."""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import orjson
from sqlalchemy import select, text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from openbotkit.access import Key
from openbotkit.actions import REGISTRY, Effect, Registry
from openbotkit.engine import Engine
from openbotkit.errors import ObkError
from openbotkit.logs import configure_logging
from openbotkit.server import wire_files  # noqa: F401 - registers the file wire adapters
from openbotkit.server.access import AccessLog
from openbotkit.server.balance import ConnectionBalance, Peers
from openbotkit.server.channels import channel_routes, email_listener
from openbotkit.server.console import WidgetCors, console_routes
from openbotkit.server.errors import on_http_error, on_obk_error, on_unexpected
from openbotkit.server.headers import SecurityHeaders
from openbotkit.server.lanes import Lanes
from openbotkit.server.mcp_http import PATH as MCP_PATH
from openbotkit.server.mcp_http import mcp_endpoint
from openbotkit.server.openapi import openapi_document
from openbotkit.server.routes import PREFIXES, action_routes, authenticate
from openbotkit.server.wire import EXTRA_ROUTES
from openbotkit.services.context import Ctx
from openbotkit.services.keys import Call, authorize
from openbotkit.services.worker import Worker
from openbotkit.settings import Settings
from openbotkit.store.tables import Account

log = logging.getLogger("openbotkit.server")


def _version() -> str:
    try:
        return importlib.metadata.version("openbotkit")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - running from a tree
        return "0"


def _team_routes(engine: Engine) -> list[BaseRoute]:
    """`GET /team/list`: the account's single team (the hosted connector checks keys with it)."""

    def load(account_id: str) -> bytes:
        with engine.store.session(write=False) as session:
            account = session.scalar(select(Account).where(Account.id == account_id))
            assert account is not None
            team = {
                "id": account.id,
                "name": account.name,
                "createdAt": account.created_at,
                "updatedAt": account.updated_at,
            }
        return orjson.dumps({"items": [team], "cursor": ""})

    def load_for(key: Key) -> bytes:
        with engine.store.session(write=False) as session:
            # The whole account's team: not for a key limited to some bots or datasets.
            ctx = Ctx(engine.runtime, session, key.account_id, key)
            authorize(ctx, key, Call("team/list", Effect.READ))
        return load(key.account_id)

    async def team_list(request: Request) -> Response:
        key = await authenticate(request, engine)
        body = await run_in_threadpool(load_for, key)
        return Response(body, media_type="application/json")

    return [Route(p + "/team/list", team_list, methods=["GET"]) for p in PREFIXES]


def _probe_routes(engine: Engine) -> list[BaseRoute]:
    """`/healthz`: the process answers (no auth, no database). `/readyz`: it can serve, i.e.
    the database answers a query; 503 otherwise, so a load balancer sends traffic elsewhere."""

    async def healthz(_request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    def ping() -> None:
        with engine.store.session(write=False) as session:
            session.execute(text("SELECT 1"))

    async def readyz(_request: Request) -> Response:
        try:
            await run_in_threadpool(ping)
        except Exception as exc:
            log.warning("not ready: the database did not answer: %s", exc)
            body = {"status": "unavailable", "message": "the database did not answer"}
            return Response(orjson.dumps(body), 503, media_type="application/json")
        return Response(b'{"status":"ready"}', media_type="application/json")

    return [
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/readyz", readyz, methods=["GET", "HEAD"]),
    ]


def _middleware(settings: Settings, balance: ConnectionBalance | None) -> list[Middleware]:
    """The connection balance of a process among several (outermost), the access log (it sees
    every answer, preflights too), the security headers of each surface (server/headers.py),
    then CORS: the chat widget's routes from any origin, always (the widget runs on other
    people's sites); every other route from the origins OBK_CORS_ORIGINS names (or *), when it
    names any."""
    stack = [Middleware(balance.middleware)] if balance else []
    stack.append(Middleware(AccessLog))
    stack.append(Middleware(SecurityHeaders))
    origins = settings.cors_origin_list
    api_cors = None
    if origins:
        api_cors = functools.partial(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "PUT", "OPTIONS"],
            # Bearer secrets, not cookies: no credentials mode, any request header.
            allow_headers=["*"],
            expose_headers=["X-Failure-Code", "Content-Disposition"],
            max_age=600,
        )
    stack.append(Middleware(WidgetCors, api_cors=api_cors))
    return stack


def create_app(
    settings: Settings,
    engine: Engine | None = None,
    *,
    worker: bool = False,
    registry: Registry = REGISTRY,
    long_lived: bool = False,
    peers: Path | None = None,
) -> Starlette:
    """The app for one engine (built from `settings` unless given). With `worker`, it also runs
    file-sync jobs in a background thread, so one `obk serve` is a whole installation. Tests
    pass their own `registry` to serve actions that exist only for them. `long_lived`: this
    process serves until it is stopped (`obk serve`), so its heap is settled when it starts and
    after each model it loads (openbotkit.heap): short collection pauses under load. `peers`:
    the folder this process shares with the other API processes of its `obk serve`, to even
    out their client connections (server/balance.py)."""
    engine = engine or Engine(settings)
    if engine.local_paths:
        # `path` fields read and write the server's own disk: never for network clients.
        raise ValueError("an Engine with local_paths=True must not be served over the network")
    engine.store.migrate()
    document = orjson.dumps(openapi_document(registry, _version()))

    async def openapi(_request: Request) -> Response:
        return Response(document, media_type="application/json")

    mcp = mcp_endpoint(engine, registry)
    lanes = Lanes.for_store(
        engine.store.is_sqlite, settings.server_threads, settings.fetches_per_account
    )
    balance = ConnectionBalance(Peers(peers)) if peers else None

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if long_lived:
            engine.runtime.keep_heap_settled()
        # Bodies staged by processes that have ended (killed mid-request) go now.
        cleaned = await anyio.to_thread.run_sync(engine.runtime.blobs.clean_staging)
        if cleaned:
            log.info("removed %d staged upload(s) left by ended processes", cleaned)
        stop = threading.Event()
        thread = None
        if worker:
            thread = threading.Thread(
                target=Worker(engine.runtime).run, args=(stop,), name="obk-worker", daemon=True
            )
            thread.start()
        mail = await email_listener(engine)
        async with anyio.create_task_group() as rounds, mcp.manager.run():
            if balance:
                rounds.start_soon(balance.run)
            yield
            rounds.cancel_scope.cancel()
        if mail is not None:
            mail.close()
        lanes.close()
        stop.set()
        if thread is not None:
            thread.join(timeout=30)
        engine.close()

    routes: list[BaseRoute] = [
        *_probe_routes(engine),
        *action_routes(registry, engine, lanes),
        *_team_routes(engine),
        *channel_routes(engine),
        *EXTRA_ROUTES,
        *(Route(p + "/openapi.json", openapi, methods=["GET"]) for p in PREFIXES),
        Route(MCP_PATH, mcp, methods=["GET", "POST", "DELETE"]),
        *console_routes(engine),  # last: it answers every path no API route took
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=_middleware(settings, balance),
        exception_handlers={
            ObkError: on_obk_error,
            HTTPException: on_http_error,
            Exception: on_unexpected,
        },
    )
    app.state.engine = engine
    return app


def _app_from_env(worker: bool) -> Starlette:
    """One API process of `obk serve --workers N`: each reads the settings from the environment."""
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings, worker=worker, long_lived=True, peers=settings.serve_peers)


def app_from_env() -> Starlette:
    """The factory `obk serve --workers N` hands to uvicorn."""
    return _app_from_env(worker=True)


def app_from_env_without_worker() -> Starlette:
    """`obk serve --workers N --no-worker`: API processes only, `obk worker` runs the jobs."""
    return _app_from_env(worker=False)

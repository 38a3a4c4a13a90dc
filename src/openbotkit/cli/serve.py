"""`obk serve`: the ChatBotKit API v1 compatible server."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

import click

from openbotkit.cli.state import state
from openbotkit.engine import LOCAL_ACCOUNT
from openbotkit.logs import configure_logging
from openbotkit.services import consoles
from openbotkit.settings import SERVE_PEERS_ENV

LEVELS = ["debug", "info", "warning", "error"]
# How long an idle keep-alive connection stays open. uvicorn's own 5 s equals the idle expiry of
# common HTTP clients (httpx's pool: 5 s), so a client could send its next request on a
# connection the server was closing at that moment: the request met a reset (seen as dropped
# requests under load, when the event loop runs late). Longer than the clients' and the usual
# load balancers' idle timeouts (60 s), the server is never the side that closes first.
KEEP_ALIVE_S = 75


def sign_in_link(host: str, port: int) -> str:
    """A one-time link signing the browser in to the console as the local account, for ten
    minutes (services/consoles.py). It travels in the fragment, never sent to the server as a
    URL (so never in a log): the console posts it once to trade it for a session."""
    link_id, token = consoles.create_link(state().engine.runtime, LOCAL_ACCOUNT)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/#signin={link_id}.{token}"


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8080, show_default=True, help="TCP port.")
@click.option("--workers", default=1, show_default=True, help="Worker processes.")
@click.option(
    "--log-level",
    type=click.Choice(LEVELS, case_sensitive=False),
    help="Log level on stderr (default OBK_LOG_LEVEL, else info).",
)
@click.option(
    "--keep-alive",
    default=KEEP_ALIVE_S,
    show_default=True,
    type=click.IntRange(min=1),
    help="Seconds an idle keep-alive connection stays open (above the clients' and any load "
    "balancer's idle timeout).",
)
@click.option(
    "--worker/--no-worker",
    default=True,
    show_default=True,
    help="Also run background jobs (file syncs, chat channel answers) in this process (else"
    " run `obk worker`).",
)
@click.option(
    "--open",
    "open_link",
    is_flag=True,
    help="Print a one-time link that signs the browser in to the console as the local account.",
)
def serve(
    host: str,
    port: int,
    workers: int,
    log_level: str | None,
    keep_alive: int,
    worker: bool,
    open_link: bool,
) -> None:
    """Serve the REST API under /api/v1 and /v1 (give SDKs the origin, e.g. http://HOST:PORT),
    the same actions as MCP tools at /mcp (Streamable HTTP, the same Bearer secrets), and the
    web console at / (sign in with an API secret).

    Also /healthz (the process is up) and /readyz (the database answers), without a secret.
    """
    if open_link:
        click.echo(f"Sign in to the console (this link works once): {sign_in_link(host, port)}")
    import uvicorn

    st = state()
    level = (log_level or st.settings.log_level).lower()
    configure_logging(level, st.settings.log_format)
    # Logging is ours (log_config=None: one handler, text or JSON lines), and so is the access
    # log (server/access.py, which times each request): uvicorn's is off.
    served: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_config": None,
        "access_log": False,
        "log_level": level,
        "timeout_keep_alive": keep_alive,
    }
    if workers > 1:
        # Each process builds its own app (and job worker) from the same environment, and
        # publishes how many clients it holds in a folder they share (server/balance.py).
        os.environ["OBK_LOG_LEVEL"] = level
        peers = tempfile.mkdtemp(prefix="obk-serve-")
        os.environ[SERVE_PEERS_ENV] = peers
        try:
            uvicorn.run(
                "openbotkit.server.app:"
                + ("app_from_env" if worker else "app_from_env_without_worker"),
                factory=True,
                workers=workers,
                **served,
                # A process answers the supervisor's pings only once its imports are done
                # (seconds on a busy small machine); at uvicorn's 5 s it was killed and
                # restarted in a loop.
                timeout_worker_healthcheck=30,
            )
        finally:
            shutil.rmtree(peers, ignore_errors=True)
        return
    from openbotkit.server.app import create_app

    # Its own engine: the CLI's honours local `path` fields, a server's never does.
    app = create_app(st.settings, worker=worker, long_lived=True)
    uvicorn.run(app, **served)

"""`obk serve`: the ChatBotKit API v1 compatible server."""

from __future__ import annotations

import click

from openbotkit.cli.state import state


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8080, show_default=True, help="TCP port.")
@click.option("--workers", default=1, show_default=True, help="Worker processes.")
@click.option("--log-level", default="info", show_default=True)
@click.option(
    "--worker/--no-worker",
    default=True,
    show_default=True,
    help="Also run file-sync jobs in this process (else run `obk worker`).",
)
def serve(host: str, port: int, workers: int, log_level: str, worker: bool) -> None:
    """Serve the REST API under /api/v1 and /v1 (give SDKs the origin, e.g. http://HOST:PORT)
    and the same actions as MCP tools at /mcp (Streamable HTTP, the same Bearer secrets)."""
    import uvicorn

    if workers > 1:
        # Each process builds its own app (and job worker) from the same environment.
        uvicorn.run(
            "openbotkit.server.app:"
            + ("app_from_env" if worker else "app_from_env_without_worker"),
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
        )
        return
    from openbotkit.server.app import create_app

    st = state()
    app = create_app(st.settings, st.engine, worker=worker)
    uvicorn.run(app, host=host, port=port, log_level=log_level)

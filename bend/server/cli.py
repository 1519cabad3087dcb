"""`bend api serve` (or `python -m bend.server serve`): the API and its web UI under uvicorn, on
127.0.0.1."""

from __future__ import annotations

import asyncio

import click

import structlog

from bend.ops.collector import freeze_startup
from bend.settings import get_settings

__all__ = ["api"]

log = structlog.get_logger(__name__)


@click.group()
def api() -> None:
    """The REST API."""


@api.command()
@click.option("--host", default=None, help="Address to bind (default BEND_API__HOST, 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default BEND_API__PORT, 8000).")
def serve(host: str | None, port: int | None) -> None:
    """Serve the API until stopped; prints a first admin key if the project has none."""
    import uvicorn

    from bend.server.app import create_app
    from bend.api.security import bootstrap_key

    settings = get_settings()
    key = asyncio.run(bootstrap_key(settings))
    if key is not None:
        click.echo(f"Admin API key of project {settings.project!r} (shown this once; keep it):\n"
                   f"  {key}\n"
                   f"Send it as `Authorization: Bearer <key>`; make more with POST /api/keys.")
    app = create_app(settings)
    frozen = freeze_startup()
    log.info("api_startup_frozen", objects=frozen)
    uvicorn.run(app, host=host or settings.api.host,
                port=port or settings.api.port, log_config=None, access_log=False)

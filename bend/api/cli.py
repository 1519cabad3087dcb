"""`bend api serve` (or `python -m bend.api serve`): the API under uvicorn, on 127.0.0.1."""

from __future__ import annotations

import click

from bend.settings import get_settings

__all__ = ["api"]


@click.group()
def api() -> None:
    """The REST API."""


@api.command()
@click.option("--host", default=None, help="Address to bind (default BEND_API__HOST, 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default BEND_API__PORT, 8000).")
def serve(host: str | None, port: int | None) -> None:
    """Serve the API until stopped."""
    import uvicorn

    from bend.api.app import create_app

    settings = get_settings()
    uvicorn.run(create_app(settings), host=host or settings.api.host,
                port=port or settings.api.port, log_config=None, access_log=False)

"""`create_app(settings)`: the REST API with the web UI under /ui, in one ASGI app."""

from __future__ import annotations

from fastapi import FastAPI

from bend.api.app import create_api
from bend.settings import Settings, get_settings
from bend.web import install_ui

__all__ = ["create_app"]


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API app for `settings` (the process's by default), with the web UI mounted."""
    app = create_api(settings or get_settings())
    install_ui(app)  # the web UI under /ui, last: its catch-all 404 must not hide API routes
    return app

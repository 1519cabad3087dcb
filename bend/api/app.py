"""The REST API: `create_app(settings)` builds the app; its lifespan opens the connections."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from bend import __version__
from bend.api.context import open_context
from bend.api.errors import install_error_handlers
from bend.api.routers import executions, health, workflows
from bend.settings import Settings, get_settings

__all__ = ["create_app"]


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API app for `settings` (the process's by default)."""
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_context(settings) as ctx:
            app.state.bend = ctx
            yield

    app = FastAPI(title="Bend", version=__version__, lifespan=lifespan,
                  description="Event-sourced orchestration of AI-agent workflows. Commands "
                              "answer with the log position of what they produced; pass it "
                              "as `?wait_for=` to read your own writes.")
    install_error_handlers(app)
    for router in (workflows.router, executions.router, health.router):
        app.include_router(router)
    return app

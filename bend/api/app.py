"""The REST API: `create_api(settings)` builds the app; its lifespan opens the connections.

The process serves it with the web UI mounted (bend.server.app.create_app).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from bend import __version__
from bend.api.context import open_context
from bend.api.errors import install_error_handlers
from bend.api.guards import ProblemBodySizeLimit, RefuseNul, document_auth
from bend.api.metrics import RequestMetrics
from bend.api.routers import (
    approvals, audit, auth, backtests, components, dead_letters, executions, health, keys,
    mcp_servers,
    notifications, rebuilds, replay, secrets,
    triggers, webhooks, workflows,
)
from bend.api.security import open_security
from bend.settings import Settings, get_settings

__all__ = ["create_api"]


def create_api(settings: Settings | None = None) -> FastAPI:
    """The REST API app for `settings` (the process's by default), without the UI."""
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_context(settings) as ctx, open_security(settings) as security:
            app.state.bend = ctx
            app.state.security = security
            yield

    app = FastAPI(title="Bend", version=__version__, lifespan=lifespan,
                  description="Event-sourced orchestration of AI-agent workflows. Commands "
                              "answer with the log position of what they produced; pass it "
                              "as `?wait_for=` to read your own writes.")
    install_error_handlers(app)
    document_auth(app)
    app.add_middleware(ProblemBodySizeLimit, max_bytes=settings.security.body_limit_bytes)
    app.add_middleware(RefuseNul)
    app.add_middleware(RequestMetrics)  # outermost: counts refused requests too
    for router in (workflows.router, executions.router, health.router, auth.router, keys.router,
                   secrets.router, triggers.router, webhooks.router):
        app.include_router(router)
    app.include_router(components.router)
    app.include_router(replay.router)
    app.include_router(rebuilds.router)
    app.include_router(dead_letters.router)
    app.include_router(audit.router)
    app.include_router(approvals.router)
    app.include_router(notifications.router)
    app.include_router(mcp_servers.router)
    app.include_router(backtests.router)
    return app

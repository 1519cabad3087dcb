"""The web UI: server-rendered pages under /ui in the API process, same origin and auth."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

__all__ = ["install_ui"]


def install_ui(app: FastAPI) -> None:
    """Mount the UI's pages and static files on the API app (the catch-all 404 goes last)."""
    from bend.web.routes import (
        access, approvals, auth, backtests, components, dead_letters, editor, fallback, run, runs,
        secrets, system, trigger_backfill, triggers, workflow_diff, workflow_status, workflows,
    )

    app.mount("/ui/static", StaticFiles(directory=Path(__file__).parent / "static"),
              name="ui-static")
    # The editor's /new and /validate before a workflow's /{workflow_id}; a trigger's
    # /backfill before its /{action}.
    for module in (auth, editor, workflow_diff, workflow_status, workflows, runs, run, approvals,
                   components, dead_letters, backtests, secrets, access, system, trigger_backfill,
                   triggers, fallback):
        app.include_router(module.router)

"""`bend audit`: who did what in the project, and which requests were refused (admins)."""

from __future__ import annotations

from datetime import datetime

import click

from bend.cli.client import ApiClient, api_command
from bend.cli.output import Output, when

__all__ = ["audit"]

_TIME = click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"])


@click.command()
@click.option("--actor", help="Only what this actor did (key:<key_id>, trigger:<id>, …).")
@click.option("--action", help="Only this action (run.request, key.create, secret.set, "
              "access.forbidden, …).")
@click.option("--workflow", "workflow_id", help="Only entries of this workflow id.")
@click.option("--since", type=_TIME, help="At or after this time (local unless it has an offset).")
@click.option("--until", type=_TIME, help="Before this time.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 500))
@api_command
def audit(api: ApiClient, out: Output, actor: str | None, action: str | None,
          workflow_id: str | None, since: datetime | None, until: datetime | None,
          limit: int) -> None:
    """The project's audit log, newest first (needs an admin key)."""
    page = api.get("/api/audit", actor=actor, action=action, workflow_id=workflow_id,
                   since=since.astimezone().isoformat() if since else None,
                   until=until.astimezone().isoformat() if until else None, limit=limit)
    if out.json_mode:
        out.data(page)
        return
    out.table(["when", "actor", "action", "on"],
              [[when(e["occurred_at"]), e["actor"], e["action"], _target(e)]
               for e in page["items"]])
    if page["next_cursor"]:
        out.note("more entries: narrow with --since/--until, or page with the API's cursor")


def _target(entry: dict[str, object]) -> str:
    detail = entry.get("detail") or {}
    if isinstance(detail, dict) and "path" in detail:
        return f"{detail['method']} {detail['path']} ({detail['status']}, {detail['client_ip']})"
    resource = detail.get("resource") if isinstance(detail, dict) else None
    return str(entry.get("run_id") or entry.get("workflow_id") or resource or "-")

"""`bend keys list|create|revoke`: the project's API keys, through the REST API (admins only)."""

from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import quote

import click

from bend.cli.client import ApiClient, api_command
from bend.cli.output import Output, ago, when

__all__ = ["keys"]

_ROLES = ["admin", "editor", "operator", "viewer"]


@click.group()
def keys() -> None:
    """List, create and revoke API keys (needs an admin key)."""


@keys.command("list")
@api_command
def list_(api: ApiClient, out: Output) -> None:
    """List every key of the project, revoked and expired ones too."""
    page = api.get("/api/keys")
    if out.json_mode:
        out.data(page)
        return
    now = datetime.now(timezone.utc)
    out.table(["id", "name", "role", "active", "created", "last used", "expires", "revoked"],
              [[k["key_id"], k["name"] or "-", k["role"], "yes" if k["active"] else "no",
                when(k["created_at"]), ago(k["last_used_at"], now), when(k["expires_at"]),
                when(k["revoked_at"])] for k in page["items"]])


@keys.command()
@click.option("--role", required=True, type=click.Choice(_ROLES),
              help="admin: everything; editor: author and run; operator: run, cancel, redrive; "
                   "viewer: read.")
@click.option("--name", default="", help="What the key is for.")
@click.option("--project", default=None,
              help="Create it in this project (installation admins only: how a project begins).")
@click.option("--expires-at", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
              default=None, help="When it stops working (local time; default: never).")
@api_command
def create(api: ApiClient, out: Output, role: str, name: str, project: str | None,
           expires_at: datetime | None) -> None:
    """Create a key; its secret is printed this once and never again."""
    body = {"role": role, "name": name, "project": project,
            "expires_at": expires_at.astimezone().isoformat() if expires_at else None}
    created = api.post("/api/keys", body)
    if out.json_mode:
        out.data(created)
        return
    out.line(f"created {role} key {created['key_id']} of project {created['project']}"
             + (f" ({name})" if name else ""))
    out.line("the key (shown this once, keep it):")
    out.line(f"  {created['key']}")
    out.note("use it with: export BEND_API_KEY=<key>")


@keys.command()
@click.argument("key_id")
@api_command
def revoke(api: ApiClient, out: Output, key_id: str) -> None:
    """Revoke a key and the tokens issued for it."""
    info = api.delete(f"/api/keys/{quote(key_id, safe='')}")
    if out.json_mode:
        out.data(info)
    else:
        out.line(f"revoked key {info['key_id']} ({info['role']})")

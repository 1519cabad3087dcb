"""Secrets of a project: names and where workflows use them; set, rotate and delete (audited).
Values go in and never come out."""

from __future__ import annotations

from dataclasses import dataclass

from bend.core.secret_refs import secrets_named
from bend.security.adminlog import AdminAction
from bend.security.dependencies import Security
from bend.security.roles import Principal, require
from bend.security.secretstore import SecretInfo
from bend.services.deps import Deps
from projections.queries import workflows as queries

__all__ = ["SecretUse", "delete_secret", "list_secrets", "set_secret", "users_of"]


@dataclass(frozen=True, slots=True)
class SecretUse:
    """A secret's name and times, with the workflows whose latest definition names it."""

    info: SecretInfo
    workflows: tuple[tuple[str, str], ...]  # (workflow_id, name)


async def _uses(deps: Deps, project: str) -> dict[str, list[tuple[str, str]]]:
    """Secret name -> the workflows (id, name) whose latest definition names it."""
    uses: dict[str, list[tuple[str, str]]] = {}
    for row in await queries.latest_definitions(deps.pool, project):
        for name in secrets_named(row["definition"]):
            uses.setdefault(name, []).append((row["workflow_id"], row["name"]))
    return uses


async def list_secrets(deps: Deps, security: Security, principal: Principal) -> list[SecretUse]:
    """The project's secrets, by name, with the workflows that use each."""
    require(principal, "secrets:read")
    uses = await _uses(deps, principal.project)
    return [SecretUse(info, tuple(uses.get(info.name, ())))
            for info in sorted(await security.secrets.list(principal.project),
                               key=lambda i: i.name)]


async def users_of(deps: Deps, principal: Principal, name: str) -> list[tuple[str, str]]:
    """The workflows (id, name) whose latest definition names the secret `name`."""
    require(principal, "secrets:read")
    return (await _uses(deps, principal.project)).get(name, [])


async def set_secret(security: Security, principal: Principal, name: str, value: str | None, *,
                     allowed_hosts: list[str] | None = None, client_ip: str) -> SecretInfo:
    """Set (or rotate) the secret's value and/or the hosts it may go to; kept in the audit log."""
    require(principal, "secrets:write")
    if value is None:
        if allowed_hosts is None:
            raise ValueError("set_secret needs a value or allowed hosts")
        info = await security.secrets.set_hosts(principal.project, name, allowed_hosts)
    else:
        info = await security.secrets.set(principal.project, name, value, allowed_hosts)
    await security.admin_log.record(AdminAction(
        principal.project, principal.subject, "secret.set", f"secret:{name}", client_ip,
        {"created": info.created_at == info.updated_at, "value_changed": value is not None}))
    return info


async def delete_secret(security: Security, principal: Principal, name: str, *,
                        client_ip: str) -> None:
    """Delete the secret (UnknownSecret if absent); kept in the audit log."""
    require(principal, "secrets:write")
    await security.secrets.delete(principal.project, name)
    await security.admin_log.record(AdminAction(
        principal.project, principal.subject, "secret.delete", f"secret:{name}", client_ip))

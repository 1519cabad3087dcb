"""API keys of a project: list, create (the key shown once) and revoke; audited (admins)."""

from __future__ import annotations

from datetime import datetime

from bend.security.adminlog import AdminAction
from bend.security.dependencies import Security
from bend.security.keystore import ApiKeyInfo, IssuedKey
from bend.security.roles import Principal, Role, installation_admin, require
from bend.services.deps import Deps
from bend.services.errors import NotInstallationAdmin

__all__ = ["create_key", "list_keys", "revoke_key"]


async def list_keys(security: Security, principal: Principal) -> list[ApiKeyInfo]:
    """Every key of the caller's project (revoked and expired ones too), oldest first."""
    require(principal, "keys:admin")
    return await security.keys.list(principal.project)


async def create_key(deps: Deps, security: Security, principal: Principal, role: Role, *,
                     name: str = "", project: str | None = None,
                     expires_at: datetime | None = None, client_ip: str) -> IssuedKey:
    """A new key of the caller's project (or, for installation admins, of `project`)."""
    require(principal, "keys:admin")
    project = project or principal.project
    if project != principal.project and not installation_admin(principal,
                                                               deps.settings.project):
        raise NotInstallationAdmin(principal.project, "create keys of another project")
    issued = await security.keys.create(project, role, name=name, created_by=principal.subject,
                                        expires_at=expires_at)
    detail = {"role": role.value, "name": name, "key_project": project}
    await security.admin_log.record(AdminAction(
        principal.project, principal.subject, "key.create", f"key:{issued.info.key_id}",
        client_ip, detail))
    return issued


async def revoke_key(security: Security, principal: Principal, key_id: str, *,
                     client_ip: str) -> ApiKeyInfo:
    """Revoke the key and the tokens issued for it (again: no change); audited."""
    require(principal, "keys:admin")
    info = await security.keys.revoke(principal.project, key_id)
    await security.admin_log.record(AdminAction(
        principal.project, principal.subject, "key.revoke", f"key:{key_id}", client_ip,
        {"role": info.role.value, "name": info.name}))
    return info

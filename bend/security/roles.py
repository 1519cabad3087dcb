"""Roles, the permission table (permission -> roles allowed), the principal and `require`."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bend.security.errors import InvalidRole, PermissionDenied

__all__ = ["Role", "Permission", "PERMISSIONS", "Principal", "parse_role", "allows", "require",
           "installation_admin"]


class Role(StrEnum):
    """What a key or token may do within its project."""

    ADMIN = "admin"  # everything, including keys and secrets
    EDITOR = "editor"  # authors workflows, triggers, components; runs them
    OPERATOR = "operator"  # runs, cancels, replays and redrives; reads everything
    VIEWER = "viewer"  # reads


class Permission(StrEnum):
    """An action on a kind of resource, spelt `resource:verb`."""

    WORKFLOWS_READ = "workflows:read"
    WORKFLOWS_WRITE = "workflows:write"
    WORKFLOWS_EXECUTE = "workflows:execute"
    RUNS_READ = "runs:read"
    RUNS_CANCEL = "runs:cancel"
    RUNS_REPLAY = "runs:replay"
    TRIGGERS_READ = "triggers:read"
    TRIGGERS_WRITE = "triggers:write"
    COMPONENTS_READ = "components:read"
    COMPONENTS_WRITE = "components:write"
    DEAD_LETTERS_READ = "dead_letters:read"
    DEAD_LETTERS_REDRIVE = "dead_letters:redrive"
    SECRETS_READ = "secrets:read"  # names only; values never leave the server
    SECRETS_WRITE = "secrets:write"
    KEYS_ADMIN = "keys:admin"
    AUDIT_READ = "audit:read"
    PROJECTIONS_REBUILD = "projections:rebuild"  # rebuild the read model and switch it in
    SYSTEM_READ = "system:read"  # workers, lag, circuits and health: the operators' page


_A, _E, _O, _V = Role.ADMIN, Role.EDITOR, Role.OPERATOR, Role.VIEWER

# Explicit rather than a ranking: editors author but operators run and redrive, and neither
# implies the other for keys, secrets and dead letters. Tests walk every cell of this table.
PERMISSIONS: dict[Permission, frozenset[Role]] = {
    Permission.WORKFLOWS_READ: frozenset({_A, _E, _O, _V}),
    Permission.WORKFLOWS_WRITE: frozenset({_A, _E}),
    Permission.WORKFLOWS_EXECUTE: frozenset({_A, _E, _O}),
    Permission.RUNS_READ: frozenset({_A, _E, _O, _V}),
    Permission.RUNS_CANCEL: frozenset({_A, _E, _O}),
    Permission.RUNS_REPLAY: frozenset({_A, _E, _O}),
    Permission.TRIGGERS_READ: frozenset({_A, _E, _O, _V}),
    Permission.TRIGGERS_WRITE: frozenset({_A, _E}),
    Permission.COMPONENTS_READ: frozenset({_A, _E, _O, _V}),
    Permission.COMPONENTS_WRITE: frozenset({_A, _E}),
    Permission.DEAD_LETTERS_READ: frozenset({_A, _E, _O}),  # payloads may hold user data
    Permission.DEAD_LETTERS_REDRIVE: frozenset({_A, _O}),
    Permission.SECRETS_READ: frozenset({_A, _E}),
    Permission.SECRETS_WRITE: frozenset({_A}),
    Permission.KEYS_ADMIN: frozenset({_A}),
    Permission.AUDIT_READ: frozenset({_A}),
    Permission.PROJECTIONS_REBUILD: frozenset({_A}),
    Permission.SYSTEM_READ: frozenset({_A, _O}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: `subject` in `project` with `role`, by API key `key_id` or token `jti`.

    `subject` is what events and audit rows record as the actor (`key:<key_id>` for keys).
    """

    subject: str
    project: str
    role: Role
    key_id: str | None = None
    jti: str | None = None


def parse_role(name: str) -> Role:
    """The role named `name`, or InvalidRole."""
    try:
        return Role(name)
    except ValueError:
        raise InvalidRole(name, [r.value for r in Role]) from None


def _granted(permission: Permission | str) -> frozenset[Role]:
    """The roles granted `permission`; none for a permission the table does not know."""
    try:
        return PERMISSIONS[Permission(permission)]
    except ValueError:
        return frozenset()


def allows(role: Role, permission: Permission | str) -> bool:
    """Whether `role` grants `permission` (an unknown permission is granted to nobody)."""
    return role in _granted(permission)


def require(principal: Principal, permission: Permission | str) -> Principal:
    """Return `principal` if its role grants `permission`, else raise PermissionDenied."""
    granted = _granted(permission)
    if principal.role not in granted:
        allowed = sorted(r.value for r in granted) or ["none"]
        raise PermissionDenied(principal.role.value, str(permission), allowed)
    return principal


def installation_admin(principal: Principal, installation_project: str) -> bool:
    """Whether `principal` administers the installation, not only its project: an admin of the
    installation's own project (`BEND_PROJECT`). Such admins create other projects' keys,
    rebuild the read models and see dead letters that belong to no run."""
    return principal.role == Role.ADMIN and principal.project == installation_project

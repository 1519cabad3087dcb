"""Authentication, authorisation, limits, secrets at rest, webhook signatures and audit rows."""

from bend.security.roles import PERMISSIONS, Permission, Principal, Role, require

__all__ = ["PERMISSIONS", "Permission", "Principal", "Role", "require"]

"""Roles and permissions: every cell of the table is enforced; projects are isolated as 404."""

from __future__ import annotations

import pytest

from bend.security import PERMISSIONS, Permission, Principal, Role, require
from bend.security.errors import InvalidRole, NotInProject, PermissionDenied
from bend.security.projects import check_project, in_project, where_project
from bend.security.roles import allows, parse_role

CELLS = [(p, r) for p in Permission for r in Role]


def _principal(role: Role, project: str = "acme") -> Principal:
    return Principal(subject="key:0123456789abcdef", project=project, role=role,
                     key_id="0123456789abcdef")


def test_every_permission_has_a_row_in_the_table() -> None:
    assert set(PERMISSIONS) == set(Permission)


@pytest.mark.parametrize(("permission", "role"), CELLS, ids=[f"{p}-{r}" for p, r in CELLS])
def test_require_grants_exactly_the_roles_the_table_lists(permission: Permission, role: Role) -> None:
    principal = _principal(role)
    if role in PERMISSIONS[permission]:
        assert require(principal, permission) is principal
        assert require(principal, permission.value) is principal
    else:
        with pytest.raises(PermissionDenied) as caught:
            require(principal, permission)
        assert caught.value.status == 403
        assert caught.value.permission == permission.value
        for allowed in PERMISSIONS[permission]:
            assert allowed.value in caught.value.message


def test_the_table_says_what_the_roles_are_for() -> None:
    # The intent behind the table, so an edit that breaks it is noticed.
    assert [r for r in Role if allows(r, Permission.KEYS_ADMIN)] == [Role.ADMIN]
    assert [r for r in Role if allows(r, Permission.SECRETS_WRITE)] == [Role.ADMIN]
    assert not allows(Role.OPERATOR, Permission.WORKFLOWS_WRITE)
    assert allows(Role.OPERATOR, Permission.DEAD_LETTERS_REDRIVE)
    assert not allows(Role.EDITOR, Permission.DEAD_LETTERS_REDRIVE)
    assert all(allows(r, p) for r in Role for p in Permission if p.value.endswith(":read")
               and p not in {Permission.DEAD_LETTERS_READ, Permission.SECRETS_READ,
                             Permission.AUDIT_READ, Permission.SYSTEM_READ})
    assert [r for r in Role if allows(r, Permission.SYSTEM_READ)] == [Role.ADMIN, Role.OPERATOR]
    assert all(not allows(Role.VIEWER, p) for p in Permission if not p.value.endswith(":read"))


def test_an_unknown_permission_is_granted_to_nobody_not_even_admin() -> None:
    assert not allows(Role.ADMIN, "workflows:destroy")
    with pytest.raises(PermissionDenied):
        require(_principal(Role.ADMIN), "workflows:destroy")


def test_an_unknown_role_name_is_a_typed_error_listing_the_roles() -> None:
    assert parse_role("operator") is Role.OPERATOR
    with pytest.raises(InvalidRole, match="admin, editor, operator, viewer"):
        parse_role("root")


def test_a_resource_of_another_project_is_not_found_like_a_missing_one() -> None:
    principal = _principal(Role.ADMIN, project="acme")
    check_project(principal, "acme", "run", "r1")  # same project: passes
    with pytest.raises(NotInProject) as other:
        check_project(principal, "globex", "run", "r1")
    with pytest.raises(NotInProject) as missing:
        check_project(principal, None, "run", "r1")
    assert other.value.status == missing.value.status == 404
    assert other.value.message == missing.value.message == "run r1 not found"
    assert "globex" not in other.value.message
    assert in_project(principal, "acme") and not in_project(principal, "globex")


def test_where_project_appends_the_principals_project_as_the_next_parameter() -> None:
    args: list[object] = ["r1"]
    clause = where_project(_principal(Role.VIEWER, project="acme"), args, column="runs.project")
    assert clause == "runs.project = $2"
    assert args == ["r1", "acme"]


def test_where_project_refuses_a_column_that_could_inject_sql() -> None:
    with pytest.raises(ValueError):
        where_project(_principal(Role.VIEWER), [], column="project = project OR 1=1 --")

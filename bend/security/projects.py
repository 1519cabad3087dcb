"""Project isolation: every query is scoped to the principal's project; others' rows are 404.

A resource of another project is answered exactly like one that does not exist (404, same
body), not 403: a 403 would confirm that the id exists, letting a key of one project probe
another project's workflow and run ids.
"""

from __future__ import annotations

from typing import Any

from bend.security.errors import NotInProject
from bend.security.roles import Principal

__all__ = ["where_project", "check_project", "in_project"]


def where_project(principal: Principal, args: list[Any], column: str = "project") -> str:
    """Append the principal's project to `args` and return the matching `column = $n` clause.

    Build queries as `args = [run_id]; sql = f"... WHERE run_id = $1 AND {where_project(p, args)}"`
    so no read path can forget the project.
    """
    if not column.replace("_", "").replace(".", "").isalnum():
        raise ValueError(f"column {column!r} is not a plain (qualified) identifier")
    args.append(principal.project)
    return f"{column} = ${len(args)}"


def in_project(principal: Principal, resource_project: str | None) -> bool:
    """Whether a row of `resource_project` is visible to `principal`."""
    return resource_project is not None and resource_project == principal.project


def check_project(
    principal: Principal, resource_project: str | None, kind: str, resource_id: str
) -> None:
    """Raise NotInProject (404) unless the resource exists (`resource_project` set) in the
    principal's project; call it with None when the row was not found, for one answer either way."""
    if not in_project(principal, resource_project):
        raise NotInProject(kind, resource_id)

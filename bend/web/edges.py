"""What each edge of a step graph means to a reader: an ordering the author wrote (`after`, or
the order of a parallel branch's steps), a data reference (a step reads another's output), or
membership in a container (a parallel's branch, a condition's arm, a loop's body).

Pure: the definition as stored (a mapping) and the graph's edges in, a role per edge out. The
page draws `after` edges boldly and data and member edges lightly (and can hide them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
import itertools

__all__ = ["AFTER", "DATA", "MEMBER", "edge_roles"]

AFTER, DATA, MEMBER = "after", "data", "member"


def _written_order(definition: Any) -> set[tuple[str, str]]:
    """(dependency, step) pairs the author wrote: each `after`, and consecutive branch steps."""
    pairs: set[tuple[str, str]] = set()
    steps = definition.get("steps") if isinstance(definition, Mapping) else None
    for step in steps if isinstance(steps, list) else []:
        if not isinstance(step, Mapping):
            continue
        step_id = step.get("id")
        for dep in step.get("after") or ():
            pairs.add((str(dep), str(step_id)))
        for branch in step.get("branches") or ():
            if isinstance(branch, list):
                pairs.update((str(a), str(b)) for a, b in itertools.pairwise(branch))
    return pairs


def edge_roles(definition: Any,
               edges: Iterable[tuple[str, str, str]]) -> dict[tuple[str, str], str]:
    """The role of each (source, target, kind) edge, keyed by (source, target)."""
    written = _written_order(definition)
    roles: dict[tuple[str, str], str] = {}
    for source, target, kind in edges:
        if kind != "after":
            roles[(source, target)] = MEMBER
        else:
            roles[(source, target)] = AFTER if (source, target) in written else DATA
    return roles

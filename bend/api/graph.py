"""A run's graph for drawing: the definition's steps as nodes with their state, and edges."""

from __future__ import annotations

from typing import Any

from bend.api.models.executions import Graph, GraphEdge, GraphNode
from bend.core.definitions import parse_definition
from bend.core.errors import BendError
from bend.core.graph import analyze
from bend.core.ids import split_instance

__all__ = ["run_graph"]

# A node's status when its instances (loop iterations) differ: the first one present.
_PRECEDENCE = ("running", "scheduled", "retrying", "failed", "timed_out", "cancelled",
               "succeeded", "skipped")


def run_graph(run: dict[str, Any], steps: list[dict[str, Any]]) -> Graph:
    """Nodes and edges of the run's pinned definition, each node with its steps' state."""
    by_step: dict[str, list[dict[str, Any]]] = {}
    for row in steps:
        try:
            step_id, _ = split_instance(row["step_id"])
        except ValueError:
            step_id = row["step_id"]
        by_step.setdefault(step_id, []).append(row)
    nodes, edges = _shape(run.get("definition"))
    known = {n["id"] for n in nodes}
    nodes += [{"id": s, "type": rows[0]["node_type"], "description": ""}
              for s, rows in by_step.items() if s not in known]
    return Graph(run_id=run["run_id"], status=run["status"],
                 nodes=[_node(n, by_step.get(n["id"], [])) for n in nodes],
                 edges=[GraphEdge(source=a, target=b, kind=k) for a, b, k in edges])


def _shape(definition: Any) -> tuple[list[dict[str, Any]], list[tuple[str, str, str]]]:
    """The definition's steps and edges; none if it no longer parses (then rows alone show)."""
    try:
        defn = parse_definition(definition)
    except BendError:
        return [], []
    plan = analyze(defn).plan
    nodes = [{"id": s.id, "type": s.type, "description": s.description} for s in defn.steps]
    if plan is None:
        return nodes, []
    edges: list[tuple[str, str, str]] = []
    for member, (container, slot) in plan.gate.items():
        edges.append((container, member, slot))
    for loop, roots in plan.roots.items():
        edges.extend((loop, r, "body") for r in roots)
    contained = {(a, b) for a, b, _ in edges}
    for step_id, deps in plan.deps.items():
        for dep in deps:
            # A container waits for its members; drawn as containment, not as a dependency.
            if (step_id, dep) not in contained and plan.scope.get(dep) != step_id:
                edges.append((dep, step_id, "after"))
    return nodes, sorted(set(edges))


def _node(node: dict[str, Any], rows: list[dict[str, Any]]) -> GraphNode:
    if not rows:
        return GraphNode(id=node["id"], type=node["type"], description=node["description"],
                         status="not_started")
    present = {r["status"] for r in rows}
    status = next((s for s in _PRECEDENCE if s in present), rows[0]["status"])
    started = [r["started_at"] for r in rows if r["started_at"] is not None]
    finished = [r["finished_at"] for r in rows if r["finished_at"] is not None]
    return GraphNode(id=node["id"], type=node["type"], description=node["description"],
                     status=status, attempts=sum(r["attempts"] for r in rows),
                     instances=len(rows), started_at=min(started, default=None),
                     finished_at=max(finished, default=None) if status not in
                     ("running", "scheduled", "retrying") else None)

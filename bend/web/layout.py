"""Layered layout of a workflow graph for SVG: layers top to bottom, edges as curves.

Pure: the definition's nodes and edges in, coordinates out. Each node sits one layer below
everything it waits for (longest path); a step after a parallel or loop also sits below the
container's members, since it waits for them to finish. Within a layer nodes are ordered by
the mean position of their parents (a few barycentre sweeps), so edges cross less.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["EdgeBox", "GraphLayout", "NodeBox", "layout"]

NODE_W = 168
NODE_H = 48
GAP_X = 28
GAP_Y = 44
PAD = 16
_SWEEPS = 4


@dataclass(frozen=True, slots=True)
class NodeBox:
    """A node placed: its top-left corner, size and layer."""

    id: str
    x: float
    y: float
    w: float
    h: float
    layer: int

    @property
    def cx(self) -> float:
        """Horizontal centre."""
        return self.x + self.w / 2


@dataclass(frozen=True, slots=True)
class EdgeBox:
    """An edge drawn: endpoints, its SVG path and its kind (`after`, `body`, an arm name)."""

    source: str
    target: str
    kind: str
    d: str
    span: int = 1  # layers crossed

@dataclass(frozen=True, slots=True)
class GraphLayout:
    """Every node and edge placed, and the drawing's size."""

    nodes: dict[str, NodeBox]
    edges: list[EdgeBox]
    width: float
    height: float


def _layers(ids: Sequence[str], edges: Sequence[tuple[str, str, str]]) -> dict[str, int]:
    """Longest-path layer of each node; members of a container count as its predecessors
    for what comes after it. A cycle (never in a valid definition) is cut where found."""
    parents: dict[str, set[str]] = {i: set() for i in ids}
    members: dict[str, set[str]] = {i: set() for i in ids}
    for source, target, kind in edges:
        if source in parents and target in parents and source != target:
            parents[target].add(source)
            if kind != "after":
                members[source].add(target)

    def inside(container: str, seen: set[str]) -> set[str]:
        found: set[str] = set()
        for m in members[container]:
            if m not in seen:
                seen.add(m)
                found |= {m} | inside(m, seen)
        return found

    def ancestors(node: str) -> set[str]:
        seen: set[str] = set()
        todo = [node]
        while todo:
            for p in parents[todo.pop()]:
                if p not in seen:
                    seen.add(p)
                    todo.append(p)
        return seen

    waits: dict[str, set[str]] = {i: set(ps) for i, ps in parents.items()}
    for source, target, kind in edges:
        if kind == "after" and source in members and target in waits:
            # A member that itself waits for `target` stays beside it (else a cycle).
            waits[target] |= {m for m in inside(source, {source}) - {target}
                              if target not in ancestors(m)}
    layer: dict[str, int] = {}
    visiting: set[str] = set()

    def depth(node: str) -> int:
        if node in layer:
            return layer[node]
        if node in visiting:
            return 0  # a cycle: cut it here
        visiting.add(node)
        result = max((depth(p) + 1 for p in sorted(waits[node])), default=0)
        visiting.discard(node)
        layer[node] = result
        return result

    for node in ids:
        depth(node)
    return layer


def _order(ids: Sequence[str], layer: dict[str, int],
           edges: Sequence[tuple[str, str, str]]) -> list[list[str]]:
    """Nodes per layer, ordered to reduce crossings (definition order breaks ties)."""
    rank = {i: n for n, i in enumerate(ids)}
    rows: list[list[str]] = [[] for _ in range(max(layer.values(), default=-1) + 1)]
    for node in ids:
        rows[layer[node]].append(node)
    parents: dict[str, list[str]] = {i: [] for i in ids}
    children: dict[str, list[str]] = {i: [] for i in ids}
    for source, target, _ in edges:
        if source in parents and target in parents and source != target:
            parents[target].append(source)
            children[source].append(target)
    for sweep in range(_SWEEPS):
        down = sweep % 2 == 0
        span = range(1, len(rows)) if down else range(len(rows) - 2, -1, -1)
        for i in span:
            ref = rows[i - 1] if down else rows[i + 1]
            where = {n: k for k, n in enumerate(ref)}
            links = parents if down else children

            current = {n: k for k, n in enumerate(rows[i])}

            def key(node: str, where: dict[str, int] = where,
                    links: dict[str, list[str]] = links,
                    current: dict[str, int] = current) -> tuple[float, int]:
                near = [where[p] for p in links[node] if p in where]
                # A node with no link to the reference row keeps its place.
                return (sum(near) / len(near) if near else float(current[node]), rank[node])

            rows[i] = sorted(rows[i], key=key)
    return rows


def _ports(box: NodeBox, count: int) -> list[float]:
    """`count` attachment points spread along the middle of a node's edge."""
    if count <= 1:
        return [box.cx]
    span = box.w * 0.6
    return [box.x + box.w * 0.2 + span * k / (count - 1) for k in range(count)]


def _curve(a: NodeBox, b: NodeBox, x1: float, x2: float) -> str:
    """A vertical cubic from the bottom of `a` (at x1) to the top of `b` (at x2); sideways
    between nodes of one layer."""
    if b.layer > a.layer:
        y1, y2 = a.y + a.h, b.y
        mid = min((y2 - y1) / 2, NODE_H + GAP_Y)
        return f"M{x1:.1f},{y1:.1f} C{x1:.1f},{y1 + mid:.1f} {x2:.1f},{y2 - mid:.1f} {x2:.1f},{y2:.1f}"
    sx, sy = (a.x + a.w, a.y + a.h / 2) if b.x >= a.x else (a.x, a.y + a.h / 2)
    ex, ey = (b.x, b.y + b.h / 2) if b.x >= a.x else (b.x + b.w, b.y + b.h / 2)
    lift = 30.0
    return (f"M{sx:.1f},{sy:.1f} C{sx:.1f},{sy - lift:.1f} {ex:.1f},{ey - lift:.1f} "
            f"{ex:.1f},{ey:.1f}")


def layout(ids: Sequence[str], edges: Sequence[tuple[str, str, str]]) -> GraphLayout:
    """Place `ids` (in definition order) and draw `edges` (source, target, kind)."""
    ids = list(dict.fromkeys(ids))
    known = set(ids)
    edges = [e for e in edges if e[0] in known and e[1] in known]
    layer = _layers(ids, edges)
    rows = _order(ids, layer, edges)
    widest = max((len(r) for r in rows), default=0)
    width = PAD * 2 + widest * NODE_W + max(widest - 1, 0) * GAP_X
    boxes: dict[str, NodeBox] = {}
    for depth_, row in enumerate(rows):
        row_w = len(row) * NODE_W + max(len(row) - 1, 0) * GAP_X
        left = (width - row_w) / 2
        for k, node in enumerate(row):
            boxes[node] = NodeBox(node, left + k * (NODE_W + GAP_X),
                                  PAD + depth_ * (NODE_H + GAP_Y), NODE_W, NODE_H, depth_)
    height = PAD * 2 + len(rows) * NODE_H + max(len(rows) - 1, 0) * GAP_Y
    drawn_edges = [e for e in edges if e[0] != e[1]]
    # Spread each node's edges over its bottom (out) and top (in), ordered by the other end.
    outs: dict[str, list[tuple[str, str, str]]] = {}
    ins: dict[str, list[tuple[str, str, str]]] = {}
    for e in drawn_edges:
        outs.setdefault(e[0], []).append(e)
        ins.setdefault(e[1], []).append(e)
    start_x: dict[tuple[str, str, str], float] = {}
    end_x: dict[tuple[str, str, str], float] = {}
    for node, group in outs.items():
        group.sort(key=lambda e: (boxes[e[1]].cx, e[1]))
        start_x.update(zip(group, _ports(boxes[node], len(group))))
    for node, group in ins.items():
        group.sort(key=lambda e: (boxes[e[0]].cx, e[0]))
        end_x.update(zip(group, _ports(boxes[node], len(group))))
    drawn = [EdgeBox(s, t, k, _curve(boxes[s], boxes[t], start_x[(s, t, k)], end_x[(s, t, k)]),
                     boxes[t].layer - boxes[s].layer)
             for s, t, k in drawn_edges]
    return GraphLayout(boxes, drawn, float(width), float(height))

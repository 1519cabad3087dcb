"""Layered layout of a workflow graph for SVG: layers top to bottom, edges as curves.

Pure: the definition's nodes and edges in, coordinates out. Each node sits one layer below
everything it waits for (longest path); a step after a parallel or loop also sits below the
container's members, since it waits for them to finish. Within a layer nodes are ordered by
the mean position of their parents (a few barycentre sweeps), so edges cross less.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import itertools

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
        return (f"M{x1:.1f},{y1:.1f} C{x1:.1f},{y1 + mid:.1f} {x2:.1f},{y2 - mid:.1f} "
                f"{x2:.1f},{y2:.1f}")
    sx, sy = (a.x + a.w, a.y + a.h / 2) if b.x >= a.x else (a.x, a.y + a.h / 2)
    ex, ey = (b.x, b.y + b.h / 2) if b.x >= a.x else (b.x + b.w, b.y + b.h / 2)
    lift = 30.0
    return (f"M{sx:.1f},{sy:.1f} C{sx:.1f},{sy - lift:.1f} {ex:.1f},{ey - lift:.1f} "
            f"{ex:.1f},{ey:.1f}")


DUMMY_W = 12.0
Edge = tuple[str, str, str]


def _through(points: list[tuple[float, float]]) -> str:
    """A path down through `points`: (bottom, top) pairs joined by vertical cubics; each
    dummy's top and bottom by a straight line."""
    (x0, y0), rest = points[0], points[1:]
    d = [f"M{x0:.1f},{y0:.1f}"]
    for k, (x, y) in enumerate(rest):
        if k % 2 == 0:  # from a bottom to the next top
            mid = (y - y0) / 2
            d.append(f"C{x0:.1f},{y0 + mid:.1f} {x:.1f},{y - mid:.1f} {x:.1f},{y:.1f}")
        else:  # down a dummy
            d.append(f"L{x:.1f},{y:.1f}")
        x0, y0 = x, y
    return " ".join(d)


def layout(ids: Sequence[str], edges: Sequence[Edge]) -> GraphLayout:
    """Place `ids` (in definition order) and draw `edges` (source, target, kind).

    An edge crossing several layers passes through a dummy point in each layer between, placed
    and ordered like a node, so long edges go around the nodes rather than through them.
    """
    ids = list(dict.fromkeys(ids))
    known = set(ids)
    edges = [e for e in edges if e[0] in known and e[1] in known and e[0] != e[1]]
    layer = _layers(ids, edges)
    every, where = list(ids), dict(layer)
    chains: dict[Edge, list[str]] = {}
    hops: list[Edge] = []
    for e in edges:
        s, t, _ = e
        if layer[t] - layer[s] > 1:
            chain, prev = [], s
            for depth in range(layer[s] + 1, layer[t]):
                dummy = f"\0{s}\0{t}\0{e[2]}\0{depth}"
                where[dummy] = depth
                every.append(dummy)
                chain.append(dummy)
                hops.append((prev, dummy, "after"))
                prev = dummy
            hops.append((prev, t, "after"))
            chains[e] = chain
        else:
            hops.append(e)
    rows = _order(every, where, hops)

    def w(node: str) -> float:
        return NODE_W if node in known else DUMMY_W

    def gap(a: str, b: str) -> float:
        return GAP_X if a in known and b in known else GAP_X / 2

    def row_width(row: list[str]) -> float:
        return sum(map(w, row)) + sum(gap(a, b) for a, b in itertools.pairwise(row))

    width = PAD * 2 + max((row_width(r) for r in rows), default=0.0)
    boxes: dict[str, NodeBox] = {}
    for depth, row in enumerate(rows):
        x = (width - row_width(row)) / 2
        for k, node in enumerate(row):
            if k:
                x += gap(row[k - 1], node)
            boxes[node] = NodeBox(node, x, PAD + depth * (NODE_H + GAP_Y), w(node), NODE_H,
                                  depth)
            x += w(node)
    height = PAD * 2 + len(rows) * NODE_H + max(len(rows) - 1, 0) * GAP_Y
    # Spread each node's edges over its bottom (out) and top (in), ordered by the next hop.
    first = {e: (chains.get(e) or [e[1]])[0] for e in edges}
    last = {e: (chains.get(e) or [e[0]])[-1] for e in edges}
    outs: dict[str, list[Edge]] = {}
    ins: dict[str, list[Edge]] = {}
    for e in edges:
        outs.setdefault(e[0], []).append(e)
        ins.setdefault(e[1], []).append(e)
    start_x: dict[Edge, float] = {}
    end_x: dict[Edge, float] = {}
    for node, group in outs.items():
        group.sort(key=lambda e: (boxes[first[e]].cx, e[1]))
        start_x.update(zip(group, _ports(boxes[node], len(group)), strict=False))
    for node, group in ins.items():
        group.sort(key=lambda e: (boxes[last[e]].cx, e[0]))
        end_x.update(zip(group, _ports(boxes[node], len(group)), strict=False))
    drawn = []
    for e in edges:
        a, b = boxes[e[0]], boxes[e[1]]
        if e in chains:
            points = [(start_x[e], a.y + a.h)]
            for dummy in chains[e]:
                box = boxes[dummy]
                points += [(box.cx, box.y), (box.cx, box.y + box.h)]
            points.append((end_x[e], b.y))
            d = _through(points)
        else:
            d = _curve(a, b, start_x[e], end_x[e])
        drawn.append(EdgeBox(e[0], e[1], e[2], d, b.layer - a.layer))
    placed = {n: boxes[n] for n in ids}
    return GraphLayout(placed, drawn, float(width), float(height))

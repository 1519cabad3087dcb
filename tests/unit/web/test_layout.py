"""The layered graph layout: every node placed once, after what it waits for, without overlap."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bend.web.layout import GAP_X, NODE_H, NODE_W, layout
from bend.web.routes.workflows import definition_graph

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "research_agent.yaml"


def test_a_chain_is_one_column_top_to_bottom() -> None:
    placed = layout(["a", "b", "c"], [("a", "b", "after"), ("b", "c", "after")])
    assert [placed.nodes[n].layer for n in "abc"] == [0, 1, 2]
    assert len({placed.nodes[n].x for n in "abc"}) == 1
    assert placed.width == NODE_W + 32


def test_a_step_after_a_parallel_sits_below_its_branches() -> None:
    placed = layout(["p", "x", "y", "next"], [("p", "x", "branch"), ("p", "y", "branch"),
                                              ("p", "next", "after")])
    assert placed.nodes["x"].layer == placed.nodes["y"].layer == 1
    assert placed.nodes["next"].layer == 2


def test_edges_start_below_their_source_and_end_above_their_target() -> None:
    placed = layout(["a", "b"], [("a", "b", "after")])
    (edge,) = placed.edges
    numbers = [float(n) for n in re.findall(r"-?\d+\.\d", edge.d)]
    a, b = placed.nodes["a"], placed.nodes["b"]
    assert (numbers[0], numbers[1]) == (a.cx, a.y + a.h)
    assert (numbers[-2], numbers[-1]) == (b.cx, b.y)


def test_a_cycle_is_cut_rather_than_looping_forever() -> None:
    placed = layout(["a", "b"], [("a", "b", "after"), ("b", "a", "after")])
    assert set(placed.nodes) == {"a", "b"}


def test_the_example_definition_draws_every_step_in_dependency_order() -> None:
    graph = definition_graph(yaml.safe_load(EXAMPLE.read_text()))
    placed = graph["layout"]
    ids = {n.id for n in graph["nodes"]}
    assert set(placed.nodes) == ids and len(ids) == 10
    layer = {n: placed.nodes[n].layer for n in ids}
    assert layer["plan"] < layer["search"] < layer["found"] < layer["read_pages"]
    assert layer["read_first"] < layer["pause"] < layer["research"] < layer["report"]
    kinds = {(e.source, e.target): e.kind for e in placed.edges}
    assert kinds[("read_pages", "read_first")] != "after"
    assert kinds[("pause", "research")] == "after"


def _acyclic(ids: list[str], edges: list[tuple[str, str, str]]) -> bool:
    """No cycle through containment: a step after a container waits for its members too, so
    a member that is also after (something after) its container makes a cycle, which no valid
    definition has."""
    members: dict[str, set[str]] = {i: set() for i in ids}
    for a, b, kind in edges:
        if kind != "after":
            members[a].add(b)

    def inside(node: str) -> set[str]:
        found, todo = set(), list(members[node])
        while todo:
            m = todo.pop()
            if m not in found:
                found.add(m)
                todo.extend(members[m])
        return found

    waits: dict[str, set[str]] = {i: set() for i in ids}
    for a, b, kind in edges:
        waits[b].add(a)
        if kind == "after":
            waits[b] |= inside(a)
    state: dict[str, int] = {}

    def cyclic(node: str) -> bool:
        if state.get(node) == 1:
            return True
        if state.get(node) == 2:
            return False
        state[node] = 1
        if any(cyclic(p) for p in waits[node]):
            return True
        state[node] = 2
        return False

    return not any(cyclic(i) for i in ids)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=14).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1),
                                   st.sampled_from(["after", "branch", "then"])), max_size=30))))
def test_any_graph_is_placed_without_overlaps_and_forward_edges_point_down(case) -> None:
    n, raw = case
    ids = [f"s{i}" for i in range(n)]
    edges = [(f"s{a}", f"s{b}", k) for a, b, k in raw if a < b]  # a DAG, as definitions are
    assume(_acyclic(ids, edges))
    placed = layout(ids, edges)
    assert set(placed.nodes) == set(ids)
    for e in edges:
        assert placed.nodes[e[1]].layer > placed.nodes[e[0]].layer
    boxes = list(placed.nodes.values())
    for i, a in enumerate(boxes):
        assert a.x >= 0 and a.x + a.w <= placed.width and a.y + a.h <= placed.height
        for b in boxes[i + 1:]:
            if a.layer == b.layer:
                assert abs(a.x - b.x) >= NODE_W + GAP_X - 1e-6
            else:
                assert abs(a.y - b.y) >= NODE_H


def _along(d: str) -> list[tuple[float, float]]:
    """Points along an SVG path of M, L and C commands (as `layout` draws them)."""
    tokens = re.findall(r"[MCL]|-?\d+(?:\.\d+)?", d)
    found: list[tuple[float, float]] = []
    at, k, command = (0.0, 0.0), 0, ""
    while k < len(tokens):
        if tokens[k] in "MCL":
            command, k = tokens[k], k + 1
            continue
        size = 6 if command == "C" else 2
        nums = [float(t) for t in tokens[k:k + size]]
        k += size
        if command == "M":
            at = (nums[0], nums[1])
            continue
        (x0, y0), steps = at, 40
        for i in range(1, steps + 1):
            s, u = i / steps, 1 - i / steps
            if command == "L":
                found.append((x0 + (nums[0] - x0) * s, y0 + (nums[1] - y0) * s))
            else:
                xs, ys = (x0, *nums[0::2]), (y0, *nums[1::2])
                found.append(tuple(  # type: ignore[arg-type]
                    u**3 * p[0] + 3 * u * u * s * p[1] + 3 * u * s * s * p[2] + s**3 * p[3]
                    for p in (xs, ys)))
        at = (nums[-2], nums[-1])
    return found


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=2, max_value=14).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1),
                                   st.sampled_from(["after", "branch", "then"])), max_size=30))))
def test_no_edge_passes_over_a_node_it_does_not_join(case) -> None:
    n, raw = case
    ids = [f"s{i}" for i in range(n)]
    edges = [(f"s{a}", f"s{b}", k) for a, b, k in raw if a < b]
    assume(_acyclic(ids, edges))
    placed = layout(ids, edges)
    for edge in placed.edges:
        for x, y in _along(edge.d):
            for box in placed.nodes.values():
                if box.id not in (edge.source, edge.target):
                    assert not (box.x + 1 < x < box.x + box.w - 1
                                and box.y + 1 < y < box.y + box.h - 1), (edge, box)


def test_the_sampler_sees_an_edge_drawn_over_a_node() -> None:
    assert any(95 < x < 105 and 95 < y < 105 for x, y in _along("M100,0 L100,200"))
    assert any(abs(x - 50) < 2 for x, _ in _along("M0,0 C0,50 100,50 100,100"))

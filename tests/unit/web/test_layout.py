"""The layered graph layout: every node placed once, after what it waits for, without overlap."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from hypothesis import given, settings
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


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=14).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1),
                                   st.sampled_from(["after", "branch", "then"])), max_size=30))))
def test_any_graph_is_placed_without_overlaps_and_forward_edges_point_down(case) -> None:
    n, raw = case
    ids = [f"s{i}" for i in range(n)]
    edges = [(f"s{a}", f"s{b}", k) for a, b, k in raw if a < b]  # a DAG, as definitions are
    placed = layout(ids, edges)
    assert set(placed.nodes) == set(ids)
    for e in edges:
        assert placed.nodes[e[1]].layer > placed.nodes[e[0]].layer
    boxes = list(placed.nodes.values())
    for i, a in enumerate(boxes):
        assert 0 <= a.x and a.x + a.w <= placed.width and a.y + a.h <= placed.height
        for b in boxes[i + 1:]:
            if a.layer == b.layer:
                assert abs(a.x - b.x) >= NODE_W + GAP_X - 1e-6
            else:
                assert abs(a.y - b.y) >= NODE_H

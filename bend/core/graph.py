"""A definition's plan: dependencies, containers, scopes and order, checked for every problem.

Ordering is a graph over step phases. A parallel or loop has a start (its branches or body may
begin) and an end (its join, or its last iteration); every other step has an end only. An edge
u -> v means v waits for u. A cycle in this graph is a definition that could never finish.
"""

from __future__ import annotations

import heapq
import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for

from bend.core.budgets import budget_problems
from bend.core.frozen import FrozenMap
from bend.core.kinds import NODE_KINDS, NODE_TYPES, Members
from bend.core.nodes import AgentStep, SubworkflowStep
from bend.core.problems import InvalidDefinition, Problem
from bend.core.references import Shape, read_shape
from bend.core.workflow import WorkflowDefinition, parse_shape

__all__ = ["Analysis", "Plan", "analyze", "compile_definition", "plan_of"]

Phase = tuple[str, str]  # (step_id, "start" | "end")
_RETRIED = [t for t in NODE_TYPES if NODE_KINDS[t].retried]
_RETRIED_TEXT = f"{', '.join(_RETRIED[:-1])} or {_RETRIED[-1]}"  # agent, tool, http or subworkflow


@dataclass(frozen=True, slots=True)
class Plan:
    """What the engine reads about a definition's shape; computed once per run, never mutated."""

    nodes: FrozenMap[str, Any]  # step id -> its StepDefinition
    scope: FrozenMap[str, str | None]  # step id -> innermost enclosing loop
    deps: FrozenMap[str, tuple[str, ...]]  # waits for these to finish (a loop: its body's too)
    gate: FrozenMap[str, tuple[str, str]]  # arm or branch member -> (container, slot)
    owner: FrozenMap[str, str]  # member -> the condition, parallel or loop listing it
    order: FrozenMap[str | None, tuple[Phase, ...]]  # scope -> its phases, topologically
    roots: FrozenMap[str, tuple[str, ...]]  # loop -> body steps that begin each iteration
    scope_steps: FrozenMap[str | None, tuple[str, ...]]  # scope -> its steps
    sinks: FrozenMap[str | None, tuple[str, ...]]  # scope -> steps nothing in it waits for
    downstream: FrozenMap[str, tuple[str, ...]]  # step -> steps that wait for it, directly
    chains: FrozenMap[str, tuple[str, ...]]  # step -> the loops around it, outermost first

    def chain(self, step_id: str) -> tuple[str, ...]:
        """The loops around `step_id`, outermost first."""
        return self.chains[step_id]

    def depth(self, step_id: str) -> int:
        """How many loops enclose `step_id`."""
        return len(self.chains[step_id])

    def enclosing(self, step_id: str) -> tuple[str, ...]:
        """`step_id` and every condition, parallel or loop around it, innermost first."""
        chain = [step_id]
        while chain[-1] in self.owner:
            chain.append(self.owner[chain[-1]])
        return tuple(chain)

    def rerun_from(self, step_id: str) -> frozenset[str]:
        """`step_id`, every step that waits on it directly or not, and every member of those
        containers: what runs again when a run is forked from `step_id`."""
        rerun: set[str] = set()
        todo = [step_id]
        while todo:
            step = todo.pop()
            if step not in rerun:
                rerun.add(step)
                todo.extend(self.downstream[step])
                todo.extend(m for m, container in self.owner.items() if container == step)
        return frozenset(rerun)


@dataclass(frozen=True, slots=True)
class Analysis:
    """A definition's plan (None when it has problems) and its problems."""

    plan: Plan | None
    problems: list[Problem] = field(default_factory=list)


def plan_of(defn: WorkflowDefinition) -> Plan:
    """The plan of a valid definition; ValueError naming the first problem otherwise."""
    analysis = analyze(defn)
    if analysis.plan is None:
        raise ValueError(f"definition is invalid: {analysis.problems[0]}")
    return analysis.plan


def analyze(defn: WorkflowDefinition) -> Analysis:
    """Every problem of the definition and, when there is none, its plan."""
    shape = read_shape(defn)
    problems = shape.problems
    _check_options(defn, problems)
    if problems:
        return Analysis(None, problems)
    edges, lifted = _edges(defn, shape)
    order = _topological(defn, shape, edges)
    if order is None:
        return Analysis(None, _cycles(defn, shape, edges))
    return Analysis(_plan(defn, shape, edges, lifted, order), [])


def _check_options(defn: WorkflowDefinition, problems: list[Problem]) -> None:
    for i, node in enumerate(defn.steps):
        kind = NODE_KINDS[node.type]
        if not kind.retried:
            for option in ("retry", "timeout"):
                if option == "timeout" and kind.takes_timeout:
                    continue
                if getattr(node, option) is not None:
                    problems.append(Problem(f"steps[{i}].{option}", (
                        f"a {node.type} step is run by the engine itself and takes no {option}; "
                        f"remove it (set it on the {_RETRIED_TEXT} steps)"), "option"))
        if isinstance(node, AgentStep) and node.llm is None and defn.llm is None:
            problems.append(Problem(f"steps[{i}].llm", "an agent step needs an llm endpoint; "
                                    "set `llm` on the step or on the workflow", "missing"))
        if isinstance(node, SubworkflowStep) and node.definition is not None:
            for p in analyze(node.definition).problems:
                problems.append(Problem(f"steps[{i}].definition.{p.location}", p.message, p.code))
    problems.extend(budget_problems(defn))
    if defn.input_schema is not None:
        try:
            validator_for(defn.input_schema).check_schema(defn.input_schema)
        except SchemaError as exc:
            problems.append(Problem("input_schema", f"not a valid JSON Schema: {exc.message}",
                                    "schema"))


def _entry(defn_types: Mapping[str, str], step_id: str) -> Phase:
    return (step_id, "start" if NODE_KINDS[defn_types[step_id]].has_start else "end")


def _edges(defn: WorkflowDefinition,
           shape: Shape) -> tuple[dict[Phase, list[Phase]], dict[str, list[str]]]:
    types = {node.id: node.type for node in defn.steps}
    edges: dict[Phase, list[Phase]] = {}
    lifted: dict[str, list[str]] = {}

    def add(u: Phase, v: Phase) -> None:
        targets = edges.setdefault(u, [])
        if v not in targets:
            targets.append(v)

    for node in defn.steps:
        edges.setdefault((node.id, "end"), [])
        if NODE_KINDS[node.type].has_start:
            add((node.id, "start"), (node.id, "end"))
        for dep in shape.deps[node.id]:
            add((dep, "end"), _entry(types, node.id))
            for loop in shape.chain(node.id):  # a loop's iterations begin with outside inputs done
                if dep != loop and not shape.within(dep, loop):
                    add((dep, "end"), (loop, "start"))
                    if dep not in lifted.setdefault(loop, []):
                        lifted[loop].append(dep)
        if node.id in shape.owner:
            container, _slot = shape.owner[node.id]
            if NODE_KINDS[types[container]].members is Members.ARMS:  # after the arm is chosen
                add((container, "end"), _entry(types, node.id))
            else:
                add((container, "start"), _entry(types, node.id))
                add((node.id, "end"), (container, "end"))
    return edges, lifted


def _topological(defn: WorkflowDefinition, shape: Shape,
                 edges: dict[Phase, list[Phase]]) -> list[Phase] | None:
    indegree: dict[Phase, int] = {u: 0 for u in edges}
    for targets in edges.values():
        for v in targets:
            indegree[v] = indegree.get(v, 0) + 1
    def key(p: Phase) -> tuple[int, int, str]:
        return (shape.position[p[0]], 0 if p[1] == "start" else 1, p[1])

    ready = [(key(p), p) for p, d in indegree.items() if d == 0]
    heapq.heapify(ready)
    order: list[Phase] = []
    while ready:
        _, phase = heapq.heappop(ready)
        order.append(phase)
        for v in edges.get(phase, []):
            indegree[v] -= 1
            if indegree[v] == 0:
                heapq.heappush(ready, (key(v), v))
    return order if len(order) == len(indegree) else None


def _cycles(defn: WorkflowDefinition, shape: Shape,
            edges: dict[Phase, list[Phase]]) -> list[Problem]:
    """One problem per distinct cycle (at most five), each spelled out."""
    preds: dict[Phase, list[Phase]] = {}
    for u, targets in edges.items():
        for v in targets:
            preds.setdefault(v, []).append(u)
    # Peel off every phase that is not on or behind a cycle; what remains all waits on a cycle.
    remaining = set(edges) | set(preds)
    changed = True
    while changed:
        changed = False
        for p in list(remaining):
            if not any(q in remaining for q in preds.get(p, [])):
                remaining.discard(p)
                changed = True
    problems: list[Problem] = []
    seen: set[frozenset[Phase]] = set()
    for start in sorted(remaining, key=lambda p: (shape.position[p[0]], p[1])):
        path: list[Phase] = [start]
        while True:
            prev = next(q for q in sorted(preds[path[-1]], key=lambda p: (shape.position[p[0]],
                                                                        p[1])) if q in remaining)
            if prev in path:
                cycle = [*path[path.index(prev):], prev]
                break
            path.append(prev)
        members = frozenset(cycle)
        if members in seen:
            continue
        seen.add(members)
        labels = [s if ph == "end" else f"{s} (start)" for s, ph in cycle]
        first = min(shape.position[s] for s, _ in cycle)
        problems.append(Problem(f"steps[{first}]", "dependency cycle: "
                                + " -> ".join(labels) + " (each waits for the next)", "cycle"))
        if len(problems) == 5:
            break
    return problems


def _plan(defn: WorkflowDefinition, shape: Shape, edges: dict[Phase, list[Phase]],
          lifted: dict[str, list[str]], order: list[Phase]) -> Plan:
    ids = [node.id for node in defn.steps]
    scopes = [None, *(node.id for node in defn.steps if NODE_KINDS[node.type].is_scope)]
    deps = {s: tuple(shape.deps[s]) + tuple(d for d in lifted.get(s, []) if d not in shape.deps[s])
            for s in ids}
    gate = {m: owner for m, owner in shape.owner.items()
            if not NODE_KINDS[next(n for n in defn.steps if n.id == owner[0]).type].is_scope}
    downstream: dict[str, list[str]] = {s: [] for s in ids}
    for (u, _), targets in edges.items():
        for v, _ in targets:
            if v != u and v not in downstream[u]:
                downstream[u].append(v)
    scope_steps = {sc: tuple(s for s in ids if shape.scope[s] == sc) for sc in scopes}
    sinks = {}
    for sc, members in scope_steps.items():
        inside = set(members)
        sinks[sc] = tuple(s for s in members if not any(v in inside for v in downstream[s]))
    roots = {loop: tuple(s for s in scope_steps[loop] if s not in gate
                         and not any(shape.scope[d] == loop for d in deps[s]))
             for loop in scopes if loop is not None}
    return Plan(
        nodes=FrozenMap((node.id, node) for node in defn.steps),
        scope=FrozenMap(shape.scope),
        deps=FrozenMap(deps),
        gate=FrozenMap(gate),
        owner=FrozenMap((m, owner[0]) for m, owner in shape.owner.items()),
        order=FrozenMap((sc, tuple(p for p in order if shape.scope[p[0]] == sc)) for sc in scopes),
        roots=FrozenMap(roots),
        scope_steps=FrozenMap(scope_steps),
        sinks=FrozenMap(sinks),
        downstream=FrozenMap((s, tuple(v)) for s, v in downstream.items()),
        chains=FrozenMap((s, shape.chain(s)) for s in ids),
    )


_COMPILED: OrderedDict[str, tuple[WorkflowDefinition, Plan]] = OrderedDict()
_COMPILED_MAX = 256


def compile_definition(data: Any) -> tuple[WorkflowDefinition, Plan]:
    """The definition in JSON data and its plan; InvalidDefinition listing every problem.

    Both are immutable, so runs of the same definition share them (a bounded cache keyed by the
    canonical JSON text: folding a partition's runs compiles each definition once).
    """
    key = json.dumps(data, sort_keys=True, separators=(",", ":"), default=repr)
    found = _COMPILED.get(key)
    if found is not None:
        _COMPILED.move_to_end(key)
        return found
    defn = parse_shape(data)
    analysis = analyze(defn)
    if analysis.plan is None:
        raise InvalidDefinition(analysis.problems)
    _COMPILED[key] = (defn, analysis.plan)
    if len(_COMPILED) > _COMPILED_MAX:
        _COMPILED.popitem(last=False)
    return defn, analysis.plan

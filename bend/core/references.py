"""What each step reads and belongs to: expression checks, step references, containers, scopes."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from bend.core.expressions import (
    ExpressionError, compile_expression, expression_names, template_expressions,
)
from bend.core.kinds import NODE_KINDS
from bend.core.nodes import StepBase
from bend.core.problems import Problem
from bend.core.workflow import WorkflowDefinition

__all__ = ["Shape", "read_shape"]

_BASE_ROOTS = frozenset({"input", "steps", "run"})
_LOOP_ROOTS = frozenset({"item", "index"})
_WHILE_ROOTS = frozenset({"index", "last", "results"})


@dataclass(slots=True)
class Shape:
    """Ids, owners (container and slot), scopes and dependencies of a definition's steps."""

    position: dict[str, int] = field(default_factory=dict)
    owner: dict[str, tuple[str, str]] = field(default_factory=dict)  # member -> (container, slot)
    scope: dict[str, str | None] = field(default_factory=dict)  # step -> innermost loop
    deps: dict[str, list[str]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def chain(self, step_id: str | None) -> tuple[str, ...]:
        """The loops around `step_id`, outermost first."""
        loops: list[str] = []
        loop = self.scope.get(step_id) if step_id is not None else None
        while loop is not None and loop not in loops:
            loops.append(loop)
            loop = self.scope.get(loop)
        return tuple(reversed(loops))

    def within(self, step_id: str, loop: str) -> bool:
        """Whether `step_id` runs inside loop `loop` (at any depth)."""
        return loop in self.chain(step_id)


def read_shape(defn: WorkflowDefinition) -> Shape:
    """The definition's shape, with every problem of ids, members, expressions and references."""
    shape = Shape()
    problems = shape.problems
    for i, node in enumerate(defn.steps):
        if node.id in shape.position:
            problems.append(Problem(f"steps[{i}].id", f"duplicate step id {node.id!r} "
                                    f"(steps[{shape.position[node.id]}] has it too)", "duplicate"))
        else:
            shape.position[node.id] = i
    _claim_members(defn, shape)
    _scopes(defn, shape)
    for i, node in enumerate(defn.steps):
        if shape.position.get(node.id) == i:
            _read_step(defn, shape, i, node)
    if defn.llm is not None:
        _template(shape, "llm.base_url", defn.llm.base_url, frozenset({"input", "run"}),
                  "the workflow's llm")
    if defn.output is not None:
        refs = _expression(shape, "output", defn.output, _BASE_ROOTS, "the run's output")
        for ref in refs:
            if ref in shape.position and shape.scope.get(ref) is not None:
                problems.append(Problem("output", f"reads {ref!r}, which runs inside loop "
                                        f"{shape.scope[ref]!r}; read the loop's output", "scope"))
    return shape


def _claim_members(defn: WorkflowDefinition, shape: Shape) -> None:
    for i, node in enumerate(defn.steps):
        for slot, loc, members in node.slots():
            for k, member in enumerate(members):
                where = f"steps[{i}].{loc}[{k}]"
                if member not in shape.position:
                    shape.problems.append(_unknown(where, member, shape))
                elif member == node.id:
                    shape.problems.append(Problem(where, f"{member!r} cannot contain itself",
                                                  "cycle"))
                elif member in shape.owner:
                    owner, other = shape.owner[member]
                    shape.problems.append(Problem(where, (
                        f"step {member!r} is already in {owner!r} ({other}); a step belongs to "
                        "at most one branch, arm or loop body"), "duplicate_member"))
                else:
                    shape.owner[member] = (node.id, slot)


def _scopes(defn: WorkflowDefinition, shape: Shape) -> None:
    types = {node.id: node.type for node in defn.steps}
    for node in defn.steps:
        seen = [node.id]
        current = node.id
        scope: str | None = None
        while current in shape.owner:
            container, _slot = shape.owner[current]
            if container in seen:
                loop_text = " -> ".join([*seen[seen.index(container):], container])
                shape.problems.append(Problem(f"steps[{shape.position[node.id]}]",
                                              f"containers hold each other: {loop_text}", "cycle"))
                scope = None
                break
            if NODE_KINDS[types[container]].is_scope:
                scope = container
                break
            seen.append(container)
            current = container
        shape.scope[node.id] = scope


def _read_step(defn: WorkflowDefinition, shape: Shape, i: int, node: StepBase) -> None:
    problems = shape.problems
    in_loop = shape.scope.get(node.id) is not None
    roots = _BASE_ROOTS | _LOOP_ROOTS if in_loop else _BASE_ROOTS
    deps: list[str] = []
    for k, dep in enumerate(node.after):
        where = f"steps[{i}].after[{k}]"
        if dep not in shape.position:
            problems.append(_unknown(where, dep, shape))
        elif dep == node.id:
            problems.append(Problem(where, f"{dep!r} cannot wait for itself", "cycle"))
        else:
            deps.append(dep)
    for loc, kind, value in node.fields_to_check():
        where = f"steps[{i}].{loc}"
        if loc == "while":
            refs = _expression(shape, where, value, _BASE_ROOTS | _WHILE_ROOTS
                               | (_LOOP_ROOTS if in_loop else frozenset()), "this loop")
            _no_body_refs(shape, where, node.id, refs, "`last` (the previous iteration's result)")
            refs = [r for r in refs if r in shape.position and not shape.within(r, node.id)]
        elif loc == "collect":
            refs = _expression(shape, where, value, _BASE_ROOTS | _LOOP_ROOTS, "an iteration")
            refs = [r for r in refs if r in shape.position and not shape.within(r, node.id)]
        elif kind == "expression":
            refs = _expression(shape, where, value, roots, f"step {node.id!r}")
        else:
            refs = _template(shape, where, value, roots, f"step {node.id!r}")
        for ref in refs:
            if ref == node.id:
                problems.append(Problem(where, f"step {node.id!r} reads its own output", "cycle"))
            elif ref in shape.position and ref not in deps:
                deps.append(ref)
    for dep in deps:
        _check_scope(shape, i, node.id, dep)
    shape.deps[node.id] = deps


def _no_body_refs(shape: Shape, where: str, loop: str, refs: list[str], instead: str) -> None:
    for ref in refs:
        if ref in shape.position and shape.within(ref, loop):
            shape.problems.append(Problem(where, f"reads {ref!r} of the loop's own body; read "
                                          f"{instead} instead", "scope"))


def _check_scope(shape: Shape, i: int, step_id: str, dep: str) -> None:
    dep_loop = shape.scope.get(dep)
    if dep_loop is not None and dep_loop not in shape.chain(step_id):
        shape.problems.append(Problem(f"steps[{i}]", (
            f"step {step_id!r} depends on {dep!r}, which runs inside loop {dep_loop!r}; "
            f"depend on {dep_loop!r} and read its output instead"), "scope"))


def _template(shape: Shape, where: str, value: Any, roots: frozenset[str],
              reader: str) -> list[str]:
    """The step ids the template `value` reads; problems as for expressions."""
    try:
        found = list(template_expressions(value))
    except ExpressionError as exc:
        shape.problems.append(Problem(where, exc.detail, "expression"))
        return []
    refs: list[str] = []
    for sub, expr in found:
        refs += _expression(shape, f"{where}.{sub}" if sub else where, expr, roots, reader)
    return refs


def _expression(shape: Shape, where: str, expr: str, roots: frozenset[str],
                reader: str) -> list[str]:
    """The step ids `expr` reads; problems for syntax, unknown names and unknown steps."""
    try:
        compile_expression(expr)
        names = expression_names(expr)
    except ExpressionError as exc:
        shape.problems.append(Problem(where, f"bad expression {expr!r}: {exc.detail}",
                                      "expression"))
        return []
    for name in sorted(names.roots - roots):
        known = ", ".join(sorted(roots))
        shape.problems.append(Problem(where, f"{reader} reads {name!r}, which its expressions "
                                      f"cannot see; they read {known}", "unknown_name"))
    if names.reads_all_steps:
        shape.problems.append(Problem(where, "reads `steps` without naming a step; write "
                                      "steps.<id>.output so the engine knows what to wait for",
                                      "loose_steps"))
    refs = []
    for ref in sorted(names.steps):
        if ref not in shape.position:
            shape.problems.append(_unknown(where, ref, shape))
        else:
            refs.append(ref)
    return refs


def _unknown(where: str, step_id: str, shape: Shape) -> Problem:
    close = difflib.get_close_matches(step_id, list(shape.position), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return Problem(where, f"unknown step {step_id!r}{hint}", "unknown_step")

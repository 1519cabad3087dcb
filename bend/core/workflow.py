"""The workflow model: a flat list of steps, each the model of its kind (bend.core.kinds), with
the workflow's input schema, output, timeout, defaults and LLM endpoint; `parse_shape` reads one
from JSON data, checked field by field (references, cycles and scopes: bend.core.graph).

Imports go one way: nodes <- kinds <- workflow <- references <- graph <- definitions.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Field, ValidationError

from bend.core.durations import parse_duration
from bend.core.kinds import NODE_KINDS, NODE_TYPES
from bend.core.nodes import (
    Budget, Duration, FrozenModel, LlmEndpoint, RetryPolicy, StepBase, SubworkflowStep,
)
from bend.core.chaining import Downstream
from bend.core.notifications import Notification
from bend.core.problems import InvalidDefinition, Problem

__all__ = ["Defaults", "StepDefinition", "WorkflowDefinition", "parse_shape"]

# Any step: the model of its `type`, one per row of the table of node kinds (bend.core.kinds).
# The union is built from the table, which a type checker cannot read: to it a step is the base
# every kind's model extends, and a kind's own fields are reached after an isinstance check.
if TYPE_CHECKING:
    StepDefinition = StepBase
else:
    StepDefinition = Annotated[
        Union[tuple(kind.model for kind in NODE_KINDS.values())],  # noqa: UP007 - from the table
        Field(discriminator="type"),
    ]


class Defaults(FrozenModel):
    """Defaults for executor and subworkflow steps that set none."""

    retry: RetryPolicy | None = None
    timeout: Duration | None = None


class WorkflowDefinition(FrozenModel):
    """A whole workflow: its steps, its input's JSON Schema, its output, timeout and defaults."""

    name: str = Field(min_length=1)
    description: str = ""
    input_schema: dict[str, Any] | None = None
    steps: tuple[StepDefinition, ...] = Field(min_length=1)
    output: str | None = None  # expression (default: the outputs of the sink steps)
    timeout: Duration | None = None  # the whole run's
    defaults: Defaults = Field(default_factory=Defaults)
    llm: LlmEndpoint | None = None  # default endpoint of agent steps
    # None, not empty, when unset: canonical JSON (and the definition's hash) leaves it out.
    notifications: tuple[Notification, ...] | None = None  # webhooks and e-mails on run events
    downstream: tuple[Downstream, ...] | None = None  # workflows a run's end starts
    budget: Budget | None = None  # LLM tokens and cost of the whole run (bend.core.budgets)

    def step(self, step_id: str) -> StepDefinition:
        """The step with this id; KeyError if there is none."""
        for node in self.steps:
            if node.id == step_id:
                return node
        raise KeyError(step_id)

    def retry_policy(self, node: StepDefinition) -> RetryPolicy:
        """The step's retry policy, else the workflow default, else the built-in one."""
        return node.retry or self.defaults.retry or RetryPolicy()

    def step_timeout(self, node: StepDefinition) -> timedelta | None:
        """The step's timeout, else the workflow default (executor and subworkflow steps only;
        approval and wait steps take their own timeout, never the default)."""
        kind = NODE_KINDS[node.type]
        if not kind.takes_timeout:
            return None
        value = node.timeout or (self.defaults.timeout if kind.retried else None)
        return parse_duration(value) if value is not None else None


SubworkflowStep.model_rebuild(_types_namespace={"WorkflowDefinition": WorkflowDefinition})


def parse_shape(data: Any) -> WorkflowDefinition:
    """The definition in JSON data, checked field by field only (no references or cycles)."""
    if not isinstance(data, dict):
        raise InvalidDefinition([Problem("(document)", "a workflow definition is a mapping "
                                         f"with name and steps, not {type(data).__name__}")])
    try:
        defn = WorkflowDefinition.model_validate(data)
    except ValidationError as exc:
        raise InvalidDefinition(_problems(exc)) from None
    return defn


def _problems(exc: ValidationError) -> list[Problem]:
    problems = []
    errors = exc.errors()
    for error in errors:
        loc = list(error["loc"])
        if loc == ["steps"] and error["type"] == "too_short" and any(
                e["loc"][:1] == ("steps",) and len(e["loc"]) > 1 for e in errors):
            continue  # pydantic's echo of a step that failed: the step's own error says it all
        # A discriminated union adds the node type after `steps[i]`; it is noise to a reader.
        if len(loc) >= 3 and loc[0] == "steps" and isinstance(loc[1], int) and loc[2] in NODE_TYPES:
            del loc[2]
        where = ""
        for part in loc:
            where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "union_tag_invalid":
            message = (f"unknown step type {error['input'].get('type')!r}; use one of "
                       f"{', '.join(NODE_TYPES)}")
        elif error["type"] == "union_tag_not_found":
            message = f"a step needs a `type`: one of {', '.join(NODE_TYPES)}"
        elif error["type"] == "string_type" and isinstance(error.get("input"), bool):
            message += (f" (YAML read {error['input']!r} from an unquoted yes/no/on/off/true/"
                        "false; quote it)")
        problems.append(Problem(where or "(document)", message, error["type"]))
    return problems

"""`Workflow`: a workflow built in Python, step by step, compiling to the definition the YAML
form gives (`bend.core.definitions.parse_definition` checks it whole).

    wf = Workflow("greeter", input_schema={"type": "object", "required": ["who"]})
    greet = wf.transform("greet", expression="join(' ', ['hello', input.who])")
    wf.tool("shout", "noop@1", inputs={"text": greet.output})
    definition = wf.build()

Steps are listed in the order they are made. A field that holds an expression takes a
reference (`greet.output`) or text; a field that holds a template takes a reference (written
`${...}`), text, or an f-string with references in it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from bend.core.definitions import InvalidDefinition, definition_json, parse_definition
from bend.core.workflow import WorkflowDefinition
from bend.sdk.errors import DefinitionError, SdkError, caller
from bend.sdk.refs import Ref, expression, template

__all__ = ["Step", "Workflow"]

T = TypeVar("T")
U = TypeVar("U")


@dataclass(frozen=True, slots=True)
class _Site:
    file: str
    line: int


class Step(Generic[T]):
    """A step of a workflow: its id, and `output`, a reference typed as its output."""

    def __init__(self, workflow: Workflow, step_id: str, data: dict[str, Any], site: _Site,
                 output_type: Any = Any) -> None:
        self.workflow = workflow
        self.id = step_id
        self.data = data
        self.site = site
        self._output_type = output_type

    @property
    def output(self) -> T:
        """The step's output, as a reference (`steps.<id>.output`) typed as declared."""
        ref: Any = Ref(f"steps.{self.id}.output", self._output_type, f"step {self.id!r} output")
        return ref  # type: ignore[no-any-return]

    def returning(self, output_type: type[U]) -> Step[U]:
        """This step, its output typed as `output_type` (a pydantic model, dataclass or
        TypedDict): reading a field it lacks fails at import, and the IDE completes fields."""
        typed: Step[U] = Step(self.workflow, self.id, self.data, self.site, output_type)
        self.workflow._replace(self, typed)
        return typed

    def __repr__(self) -> str:
        return f"Step({self.id!r}, type={self.data['type']!r})"


def _ids(steps: Iterable[Step[Any] | str]) -> list[str]:
    return [s.id if isinstance(s, Step) else str(s) for s in steps]


def _model(value: Any) -> Any:
    """A pydantic model (RetryPolicy, LlmEndpoint...) as the JSON the YAML would give."""
    dump = getattr(value, "model_dump", None)
    return dump(mode="json", by_alias=True, exclude_unset=True) if dump else value


_STEP_AT = re.compile(r"^steps\[(\d+)\]")


class Workflow:
    """A workflow under construction; `build()` gives its checked WorkflowDefinition."""

    def __init__(self, name: str, *, description: str = "",
                 input_schema: Mapping[str, Any] | None = None, input_type: Any = Any,
                 timeout: str | None = None, defaults: Any = None, llm: Any = None,
                 budget: Any = None) -> None:
        self.name = name
        self.site = _Site(*caller())
        self._head: dict[str, Any] = {"name": name}
        if description:
            self._head["description"] = description
        if input_schema is not None:
            self._head["input_schema"] = dict(input_schema)
        if timeout is not None:
            self._head["timeout"] = timeout
        if defaults is not None:
            self._head["defaults"] = {k: _model(v) for k, v in _model(defaults).items()}
        if llm is not None:
            self._head["llm"] = _model(llm)
        if budget is not None:
            self._head["budget"] = _model(budget)
        self._input_type = input_type
        self._steps: list[Step[Any]] = []
        self._output: str | None = None
        self._built: WorkflowDefinition | None = None

    @property
    def input(self) -> Any:
        """The run's input, as a reference (`input`), typed as `input_type`."""
        return Ref("input", self._input_type, "the workflow's input")

    @property
    def steps(self) -> tuple[Step[Any], ...]:
        """The steps made so far, in order."""
        return tuple(self._steps)

    def output(self, value: Any) -> None:
        """The run's output: an expression (a reference or text); default: the sinks'."""
        self._output = expression(value)
        self._built = None

    # -- steps, one method per kind ------------------------------------------------------------

    def transform(self, id: str, *, expression: Any = None,
                  mapping: Mapping[str, Any] | None = None, **common: Any) -> Step[Any]:
        """Compute the output from an expression, or a mapping of names to expressions."""
        return self._add(id, "transform", common, expression=_expr(expression),
                         mapping=None if mapping is None else
                         {k: _expr(v) for k, v in mapping.items()})

    def tool(self, id: str, component: Any, *, inputs: Mapping[str, Any] | None = None,
             **common: Any) -> Step[Any]:
        """Call `component` (`name@version`, or a Component such as an @tool function) with
        `inputs` (templates)."""
        return self._add(id, "tool", common, component=_ref(component),
                         inputs=None if inputs is None else template(dict(inputs)))

    def http(self, id: str, url: Any, *, method: str | None = None,
             headers: Mapping[str, Any] | None = None, query: Mapping[str, Any] | None = None,
             body: Any = None, **common: Any) -> Step[Any]:
        """Send one HTTP request; its output is `{status, headers, body}`."""
        return self._add(id, "http", common, method=method, url=template(url),
                         headers=None if headers is None else template(dict(headers)),
                         query=None if query is None else template(dict(query)),
                         body=template(body))

    def agent(self, id: str, *, model: str, prompt: Any, system_prompt: Any = None,
              tools: Sequence[Any] = (), max_iterations: int | None = None,
              temperature: float | None = None, llm: Any = None,
              output_schema: Mapping[str, Any] | None = None, fallbacks: Sequence[Any] = (),
              budget: Any = None, mcp_servers: Sequence[Any] = (),
              **common: Any) -> Step[Any]:
        """A model with `tools` (component refs or Components) in a loop, prompted with
        templates; `output_schema` asks for a JSON answer, `fallbacks` (model names or
        ModelFallback) answer when the model fails, `budget` caps its tokens and cost,
        `mcp_servers` (a registered server's name, or `{name, url | command, ...}`) add the
        tools of MCP servers."""
        return self._add(id, "agent", common, model=model, system_prompt=template(system_prompt),
                         prompt=template(prompt), tools=[_ref(t) for t in tools] or None,
                         max_iterations=max_iterations, temperature=temperature,
                         llm=_model(llm),
                         output_schema=None if output_schema is None else dict(output_schema),
                         fallbacks=[_model(f) for f in fallbacks] or None,
                         budget=_model(budget),
                         mcp_servers=[_model(m) for m in mcp_servers] or None)

    def condition(self, id: str, *, if_: Any = None, then: Iterable[Step[Any] | str] = (),
                  else_: Iterable[Step[Any] | str] = (), switch: Any = None,
                  cases: Mapping[str, Iterable[Step[Any] | str]] | None = None,
                  default: Iterable[Step[Any] | str] = (), **common: Any) -> Step[Any]:
        """if/else (`if_`, `then`, `else_`) or switch (`switch`, `cases`, `default`); the arms
        name steps (made before or after, by handle or id)."""
        return self._add(id, "condition", common, **{
            "if": _expr(if_), "then": _ids(then) or None, "else": _ids(else_) or None,
            "switch": _expr(switch), "default": _ids(default) or None,
            "cases": None if cases is None else {k: _ids(v) for k, v in cases.items()}})

    def loop(self, id: str, *, body: Iterable[Step[Any] | str], for_each: Any = None,
             while_: Any = None, concurrency: int | None = None,
             max_iterations: int | None = None, collect: Any = None,
             **common: Any) -> Step[Any]:
        """Run `body` once per item of `for_each`, or while `while_` holds."""
        return self._add(id, "loop", common, **{
            "for_each": _expr(for_each), "while": _expr(while_), "body": _ids(body),
            "concurrency": concurrency, "max_iterations": max_iterations,
            "collect": _expr(collect)})

    def parallel(self, id: str, *, branches: Iterable[Iterable[Step[Any] | str]],
                 join: Literal["all", "any", "first_n"] | None = None, n: int | None = None,
                 **common: Any) -> Step[Any]:
        """Start the branches together; finish when `join` is met."""
        return self._add(id, "parallel", common, branches=[_ids(b) for b in branches],
                         join=join, n=n)

    def delay(self, id: str, *, duration: str | None = None, until: Any = None,
              **common: Any) -> Step[Any]:
        """Wait on a durable timer: `duration` (`2s`, `1h`), or `until` a time expression."""
        return self._add(id, "delay", common, duration=duration, until=_expr(until))

    def subworkflow(self, id: str, workflow: str, *, version: int | None = None,
                    definition: Workflow | None = None, input: Any = None,
                    **common: Any) -> Step[Any]:
        """Run a child workflow (`workflow` by id, or an inline `definition`)."""
        inline = None if definition is None else definition_json(definition.build())
        return self._add(id, "subworkflow", common, workflow=workflow, version=version,
                         definition=inline, input=template(input))

    def approval(self, id: str, *, message: Any = None, approvers: Any = None,
                 answer_schema: Mapping[str, Any] | None = None,
                 on_timeout: Literal["approve", "reject"] | None = None,
                 **common: Any) -> Step[Any]:
        """Wait for a person to approve (output: their answer) or reject."""
        return self._add(id, "approval", common, message=template(message),
                         approvers=_model(approvers), answer_schema=answer_schema,
                         on_timeout=on_timeout)

    def wait(self, id: str, signal: str, *, payload_schema: Mapping[str, Any] | None = None,
             **common: Any) -> Step[Any]:
        """Wait for the signal `signal`; the output is its payload."""
        return self._add(id, "wait", common, signal=signal, payload_schema=payload_schema)

    # -- compiling ------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The definition as the YAML form's JSON data (not yet checked)."""
        data = dict(self._head)
        data["steps"] = [step.data for step in self._steps]
        if self._output is not None:
            data["output"] = self._output
        return data

    def build(self) -> WorkflowDefinition:
        """The checked definition; DefinitionError lists every problem at the file and line
        of the step it is in (or of the Workflow)."""
        if self._built is None:
            try:
                self._built = parse_definition(self.to_json())
            except InvalidDefinition as exc:
                raise self._located(exc) from None
        return self._built

    def _located(self, exc: InvalidDefinition) -> DefinitionError:
        lines = []
        first: _Site | None = None
        for problem in exc.problems:
            match = _STEP_AT.match(problem.location)
            site = self.site
            if match and int(match.group(1)) < len(self._steps):
                step = self._steps[int(match.group(1))]
                site = step.site
                where = f"step {step.id!r}" + problem.location[match.end():]
            else:
                where = problem.location
            first = first or site
            lines.append(f"{site.file}:{site.line}: {where}: {problem.message}")
        site = first or self.site
        return DefinitionError(lines, site.file, site.line)

    def _add(self, step_id: str, node_type: str, common: dict[str, Any],
             **fields: Any) -> Step[Any]:
        site = _Site(*caller())
        unknown = set(common) - {"description", "after", "when", "retry", "timeout"}
        if unknown:
            raise SdkError(f"{node_type} step {step_id!r} takes no {', '.join(sorted(unknown))}",
                           site.file, site.line)
        if any(s.id == step_id for s in self._steps):
            raise SdkError(f"a step {step_id!r} exists already; step ids are unique",
                           site.file, site.line)
        data: dict[str, Any] = {"id": step_id, "type": node_type}
        if common.get("description"):
            data["description"] = common["description"]
        data.update({key: value for key, value in fields.items() if value is not None})
        if common.get("when") is not None:
            data["when"] = expression(common["when"])
        if common.get("after"):
            data["after"] = _ids(common["after"])
        if common.get("retry") is not None:
            data["retry"] = _model(common["retry"])
        if common.get("timeout") is not None:
            data["timeout"] = common["timeout"]
        step: Step[Any] = Step(self, step_id, data, site)
        self._steps.append(step)
        self._built = None
        return step

    def _replace(self, old: Step[Any], new: Step[Any]) -> None:
        self._steps[self._steps.index(old)] = new


def _ref(component: Any) -> str:
    """`name@version` of a component, or the text given."""
    return str(getattr(component, "ref", component))


def _expr(value: Any) -> Any:
    return expression(value)

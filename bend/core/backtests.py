"""Backtests: a step's definition changed and checked against its kind, and each backtest run
compared with the recorded run it was forked from.

A backtest forks past runs from one step with that step changed (bend.core.fork: the steps
before it are reused, the impure steps after it replayed from the record); `compare_run` puts
each fork beside its source and `summarize` adds them up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import ValidationError

from bend.core.definitions import parse_definition
from bend.core.errors import BendError
from bend.core.kinds import kind_of

__all__ = [
    "Comparison", "InvalidOverride", "RunSide", "UnknownBacktestStep", "compare_run",
    "json_diff", "override_step", "summarize",
]

_FIXED = ("id", "type")
_FINISHED = ("completed", "failed", "cancelled")


class InvalidOverride(BendError):
    """The change to the step is not a valid definition of a step of its kind."""

    status = 422

    def __init__(self, step_id: str, problem: str) -> None:
        super().__init__(f"cannot change step {step_id!r}: {problem}")
        self.step_id = step_id


class UnknownBacktestStep(BendError):
    """The step to backtest is not in the workflow's (or a selected run's) definition."""

    code = "unknown_step"
    status = 422

    def __init__(self, where: str, step_id: str, steps: Sequence[str]) -> None:
        super().__init__(f"{where} has no step {step_id!r}; backtest one of its steps: "
                         f"{', '.join(steps) or '(none)'}")
        self.step_id = step_id


def override_step(definition: Any, step_id: str, changes: Mapping[str, Any], *,
                  where: str = "the workflow") -> dict[str, Any]:
    """`definition` (JSON data) with step `step_id`'s fields set to `changes` (a null removes
    one), checked against the step's kind and as a whole definition; typed errors say why not."""
    steps = definition.get("steps") if isinstance(definition, dict) else None
    if not isinstance(steps, list):
        raise UnknownBacktestStep(where, step_id, [])
    index = next((i for i, s in enumerate(steps)
                  if isinstance(s, dict) and s.get("id") == step_id), None)
    if index is None:
        raise UnknownBacktestStep(where, step_id,
                                  [str(s.get("id")) for s in steps if isinstance(s, dict)])
    step = steps[index]
    if not changes:
        raise InvalidOverride(step_id, "the change is empty; set the fields to change, e.g. "
                              "{\"prompt\": \"...\"} or {\"model\": \"...\"}")
    fixed = [f for f in _FIXED if f in changes and changes[f] != step.get(f)]
    if fixed:
        raise InvalidOverride(step_id, f"{', '.join(fixed)} cannot change in a backtest; it "
                              "compares the same step with a different prompt, model or "
                              "parameters")
    kind = kind_of(step.get("type"))
    if kind is None:
        raise InvalidOverride(step_id, f"its type {step.get('type')!r} is not a step kind")
    allowed = {name for name, f in kind.model.model_fields.items()} | {
        f.alias for f in kind.model.model_fields.values() if f.alias}
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise InvalidOverride(step_id, f"a {kind.name} step has no field "
                              f"{', '.join(map(repr, unknown))}; its fields are "
                              f"{', '.join(sorted(allowed - set(_FIXED)))}")
    changed = {k: v for k, v in {**step, **changes}.items() if v is not None}
    try:
        kind.model.model_validate(changed)
    except ValidationError as exc:
        first = exc.errors()[0]
        at = ".".join(str(p) for p in first["loc"]) or "(step)"
        raise InvalidOverride(step_id, f"{at}: {first['msg']}") from None
    new = {**definition, "steps": [*steps[:index], changed, *steps[index + 1:]]}
    try:
        parse_definition(new)
    except BendError as exc:
        raise InvalidOverride(step_id, f"the changed definition is invalid: {exc.message}") \
            from None
    return new


def json_diff(before: Any, after: Any, path: str = "$", limit: int = 20) -> list[str]:
    """Where two JSON values differ, one line per difference (at most `limit`)."""
    out: list[str] = []
    _diff(before, after, path, out, limit)
    return out


def _diff(a: Any, b: Any, path: str, out: list[str], limit: int) -> None:
    if len(out) >= limit or a == b:
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for key in [*a, *(k for k in b if k not in a)]:
            if key not in b:
                out.append(f"{path}.{key}: removed (was {_short(a[key])})")
            elif key not in a:
                out.append(f"{path}.{key}: added {_short(b[key])}")
            else:
                _diff(a[key], b[key], f"{path}.{key}", out, limit)
            if len(out) >= limit:
                return
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _diff(x, y, f"{path}[{i}]", out, limit)
    else:
        out.append(f"{path}: {_short(a)} -> {_short(b)}")


def _short(value: Any, width: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= width else text[:width - 1] + "…"


@dataclass(frozen=True, slots=True)
class RunSide:
    """One side of a comparison: a run, its outcome and what its changed step cost."""

    run_id: str
    status: str
    output: Any = None
    step_status: str | None = None
    step_output: Any = None
    error_type: str | None = None
    error_message: str | None = None
    duration_ms: int | None = None
    step_duration_ms: int | None = None
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def finished(self) -> bool:
        """Whether the run has ended."""
        return self.status in _FINISHED

    @property
    def tokens(self) -> int:
        """Prompt and completion tokens of the changed step's model calls."""
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class Comparison:
    """A backtest run beside its source: `verdict` is pending, failed, changed or unchanged."""

    source_run_id: str
    verdict: str
    original: RunSide
    backtest: RunSide | None
    output_diff: list[str] = field(default_factory=list)
    step_diff: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"source_run_id": self.source_run_id, "run_id": self.backtest and
                self.backtest.run_id, "verdict": self.verdict,
                "output_diff": self.output_diff, "step_diff": self.step_diff,
                "original": asdict(self.original),
                "backtest": None if self.backtest is None else asdict(self.backtest)}


def compare_run(original: RunSide, backtest: RunSide | None) -> Comparison:
    """The backtest run `backtest` (None: not projected yet) beside its source `original`."""
    if backtest is None or not backtest.finished:
        return Comparison(original.run_id, "pending", original, backtest)
    output_diff = json_diff(original.output, backtest.output)
    step_diff = json_diff(original.step_output, backtest.step_output)
    if backtest.status != "completed":
        verdict = "failed"
    else:
        verdict = "changed" if output_diff or step_diff or original.status != "completed" \
            else "unchanged"
    return Comparison(original.run_id, verdict, original, backtest, output_diff, step_diff)


def summarize(comparisons: Iterable[Comparison]) -> dict[str, Any]:
    """The backtest in aggregate: counts by verdict, and token, cost and latency deltas over
    the finished runs (backtest minus original, the changed step's calls)."""
    done = list(comparisons)
    counts = {v: sum(c.verdict == v for c in done)
              for v in ("changed", "unchanged", "failed", "pending")}
    finished = [c for c in done if c.backtest is not None and c.verdict != "pending"]
    tokens = [(c.original.tokens, c.backtest.tokens) for c in finished if c.backtest]
    cost = [(c.original.cost_usd, c.backtest.cost_usd) for c in finished if c.backtest]
    latency = [(c.original.step_duration_ms or 0, c.backtest.step_duration_ms or 0)
               for c in finished if c.backtest]
    return {
        "runs": len(done), "finished": len(finished), **counts,
        "original_failed": sum(c.original.status != "completed" for c in done),
        "tokens_original": sum(a for a, _ in tokens), "tokens_backtest": sum(b for _, b in tokens),
        "tokens_delta": sum(b - a for a, b in tokens),
        "cost_original_usd": round(sum(a for a, _ in cost), 6),
        "cost_backtest_usd": round(sum(b for _, b in cost), 6),
        "cost_delta_usd": round(sum(b - a for a, b in cost), 6),
        "step_latency_delta_ms": sum(b - a for a, b in latency),
    }

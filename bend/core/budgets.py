"""LLM budgets: what a run's calls used, whether a budget is spent, and budgets too small to use.

A budget (bend.core.nodes.Budget) caps tokens and cost; an agent step's caps its attempt's
calls (the executor enforces it), a workflow's caps the run's (the executor stops an agent step
mid-loop, and the cascade schedules no agent step once the run's recorded calls spent it).
Costs are priced by the executors and recorded on each call, so the core only adds them up.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from bend.core.nodes import AgentStep, Budget
from bend.core.problems import Problem
from bend.core.workflow import WorkflowDefinition

__all__ = ["LlmUsage", "Overrun", "PriceOf", "budget_problems", "min_call_tokens", "overrun"]

# A model's price per million tokens (prompt, completion), or None when not priced.
PriceOf = Callable[[str], "tuple[float, float] | None"]

_TEMPLATE = re.compile(r"\$\{[^}]*\}")


@dataclass(frozen=True, slots=True)
class LlmUsage:
    """LLM calls recorded so far, and their tokens and cost."""

    calls: int = 0
    tokens: int = 0
    cost_usd: float = 0.0

    def plus(self, tokens: int, cost_usd: float) -> LlmUsage:
        """The usage after one more call."""
        return LlmUsage(self.calls + 1, self.tokens + tokens, self.cost_usd + cost_usd)


@dataclass(frozen=True, slots=True)
class Overrun:
    """A spent budget: which limit, its value and what was used."""

    limit: str  # max_tokens | max_cost_usd
    allowed: float
    used: float

    def text(self, whose: str, used: str = "used") -> str:
        """`the run's budget.max_tokens of 500 is exceeded: 612 tokens used`."""
        if self.limit == "max_tokens":
            return (f"{whose} budget.max_tokens of {int(self.allowed)} is exceeded: "
                    f"{int(self.used)} tokens {used}")
        return (f"{whose} budget.max_cost_usd of ${self.allowed:g} is exceeded: "
                f"${self.used:.6f} {used}")


def overrun(budget: Budget | None, tokens: int, cost_usd: float) -> Overrun | None:
    """The first limit of `budget` that `tokens` and `cost_usd` go past, or None."""
    if budget is None:
        return None
    if budget.max_tokens is not None and tokens > budget.max_tokens:
        return Overrun("max_tokens", budget.max_tokens, tokens)
    if budget.max_cost_usd is not None and cost_usd > budget.max_cost_usd:
        return Overrun("max_cost_usd", budget.max_cost_usd, cost_usd)
    return None


def _words(text: str | None) -> int:
    return len(_TEMPLATE.sub(" ", text or "").split())


def min_call_tokens(step: AgentStep) -> int:
    """The fewest tokens one call of `step` can use: the words of its prompts' fixed text (a
    word is at least one token) and one completion token."""
    return _words(step.system_prompt) + _words(step.prompt) + 1


def _cost(tokens: int, price: tuple[float, float]) -> float:
    return ((tokens - 1) * price[0] + price[1]) / 1e6


def budget_problems(defn: WorkflowDefinition, price_of: PriceOf | None = None) -> list[Problem]:
    """Budgets that one call of an agent step already spends: by tokens always, by cost where
    `price_of` prices the step's model."""
    problems: list[Problem] = []
    for i, step in enumerate(defn.steps):
        if not isinstance(step, AgentStep):
            continue
        node: AgentStep = step
        least = min_call_tokens(node)
        price = price_of(node.model) if price_of is not None else None
        for where, budget in ((f"steps[{i}].budget", node.budget), ("budget", defn.budget)):
            if budget is None:
                continue
            if budget.max_tokens is not None and budget.max_tokens < least:
                problems.append(Problem(f"{where}.max_tokens", (
                    f"{budget.max_tokens} tokens is less than one call of step {node.id} uses: "
                    f"its prompt alone is at least {least - 1} tokens; raise it"), "budget"))
            if budget.max_cost_usd is not None and price is not None \
                    and budget.max_cost_usd < _cost(least, price):
                problems.append(Problem(f"{where}.max_cost_usd", (
                    f"${budget.max_cost_usd:g} is less than one call of step {node.id} costs: "
                    f"at least ${_cost(least, price):.6f} for {least} tokens of {node.model}; "
                    "raise it"), "budget"))
    return problems

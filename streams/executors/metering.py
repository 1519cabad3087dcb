"""An agent attempt's LLM budgets, checked around each model call (bend.core.budgets).

Before a call: the call re-sends the conversation, so it takes at least the last call's tokens
(and cost); if that would go past a budget, the loop stops before calling. After a call: its
recorded usage counts, and a budget gone past fails the attempt. The step's budget counts this
attempt's calls; the run's adds them to what the run had used when the step was scheduled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bend.core.budgets import Overrun, overrun
from bend.core.nodes import Budget
from streams.executors.errors import BudgetExceeded

__all__ = ["Meter"]

_STEP, _RUN = "the step's", "the run's"


@dataclass(slots=True)
class Meter:
    """Tokens and cost of an attempt against the step's and the run's budgets."""

    step: Budget | None = None
    run: Budget | None = None
    run_tokens: int = 0  # the run's usage when the step was scheduled
    run_cost_usd: float = 0.0
    tokens: int = 0  # this attempt's calls (a resumed attempt's earlier ones too)
    cost_usd: float = 0.0
    last_tokens: int = 0
    last_cost_usd: float = 0.0

    @classmethod
    def of(cls, step: dict[str, Any] | None, run: dict[str, Any] | None) -> Meter:
        """The meter of a task's `budget` and `run_budget` inputs."""
        run = run or {}
        limits = {k: v for k, v in run.items() if k in ("max_tokens", "max_cost_usd")}
        return cls(step=Budget.model_validate(step) if step else None,
                   run=Budget.model_validate(limits) if limits else None,
                   run_tokens=int(run.get("used_tokens") or 0),
                   run_cost_usd=float(run.get("used_cost_usd") or 0.0))

    def _check(self, tokens: int, cost_usd: float, used: str, what: str) -> None:
        spent: tuple[str, Overrun | None]
        for spent in ((_STEP, overrun(self.step, tokens, cost_usd)),
                      (_RUN, overrun(self.run, self.run_tokens + tokens,
                                     self.run_cost_usd + cost_usd))):
            whose, over = spent
            if over is not None:
                where = "the agent step's `budget`" if whose == _STEP else "the workflow's `budget`"
                raise BudgetExceeded(over.text(whose, used), f"{what}; raise {where} or ask for "
                                     "less (fewer iterations, a shorter prompt, a cheaper model)")

    def before_call(self) -> None:
        """Stop before a call that would go past a budget (BudgetExceeded)."""
        if self.last_tokens:
            self._check(self.tokens + self.last_tokens, self.cost_usd + self.last_cost_usd,
                        "used with the next model call, which re-sends at least the last "
                        f"call's {self.last_tokens} tokens", "the agent stopped before it")

    def after_call(self, tokens: int, cost_usd: float) -> None:
        """Count a call; BudgetExceeded if it went past a budget."""
        self.tokens += tokens
        self.cost_usd += cost_usd
        self.last_tokens, self.last_cost_usd = tokens, cost_usd
        self._check(self.tokens, self.cost_usd, "used", "the agent stopped after that call")

"""What is wrong with a workflow definition, each problem with where it is."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bend.core.errors import BendError

__all__ = ["InvalidDefinition", "Problem"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem: `location` (e.g. `steps[3].inputs.query`) and what is wrong there."""

    location: str
    message: str
    code: str = "invalid"

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class InvalidDefinition(BendError):
    """A workflow definition does not parse or does not hold together; lists every problem."""

    status = 422

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        listed = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"the workflow definition has {count} problem{'s' * (count != 1)}; "
                         f"fix {'them' if count != 1 else 'it'} and submit it again:\n{listed}")

"""What starting, stopping and asking after a local service reports."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["Outcome", "ServiceStatus"]

_NOTHING_DONE = frozenset({"already running", "not running", "external, left alone"})


@dataclass(frozen=True)
class ServiceStatus:
    """One service of the local stack as `bend dev status` sees it."""

    name: str
    running: bool
    answering: bool
    pid: int | None = None
    address: str = ""
    log_path: Path | None = None
    managed: bool = True  # False: an external service (BEND_DATABASE_URL) we only check

    def describe(self) -> str:
        """One line for people."""
        if not self.managed:
            state = "answering" if self.answering else "NOT answering"
            return f"{self.name}: external at {self.address}, {state}"
        if not self.running:
            return f"{self.name}: not running"
        state = "answering" if self.answering else "NOT answering yet"
        return f"{self.name}: running, pid {self.pid}, {self.address}, {state}"


@dataclass(frozen=True)
class Outcome:
    """What `up` or `down` did to one service and how long it took."""

    name: str
    action: str  # started | already running | external | stopped | not running | killed
    seconds: float
    pid: int | None = None
    address: str = ""
    detail: str = ""

    def describe(self) -> str:
        """One line for people."""
        where = f" at {self.address}" if self.address else ""
        pid = f" (pid {self.pid})" if self.pid else ""
        extra = f"; {self.detail}" if self.detail else ""
        took = "" if self.action in _NOTHING_DONE else f" in {self.seconds:.1f} s"
        return f"{self.name}: {self.action}{where}{pid}{took}{extra}"

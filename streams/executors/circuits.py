"""The executor's circuit breakers, one per external target (an HTTP host, an LLM endpoint)."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from urllib.parse import urlsplit

import structlog

from bend.core.circuit import (
    Breaker, CircuitPolicy, CircuitResult, CircuitState, CircuitTransition, admit, record_failure,
    record_success, release,
)
from streams.executors.errors import CircuitOpen, PermanentStepError, RetryableStepError

__all__ = ["CircuitBreakers", "target_of"]

log = structlog.get_logger(__name__)


def target_of(url: str) -> str:
    """The breaker target of a URL: its scheme, host and port (`http://127.0.0.1:8080`)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class CircuitBreakers:
    """Breakers by target; transitions go to `on_transition` and stay in `transitions`.

    One event loop owns it, so no lock: each method runs without awaiting.
    """

    def __init__(self, policy: CircuitPolicy | None = None,
                 on_transition: Callable[[CircuitTransition], None] | None = None,
                 keep: int = 1000) -> None:
        self.policy = policy or CircuitPolicy()
        self.on_transition = on_transition
        self.transitions: deque[CircuitTransition] = deque(maxlen=keep)
        self._breakers: dict[str, Breaker] = {}

    def breaker(self, target: str) -> Breaker:
        """The current breaker of `target` (closed if never used)."""
        return self._breakers.get(target) or Breaker(target=target)

    def states(self) -> list[tuple[str, CircuitState]]:
        """Every target used so far and its breaker's state (safe to read from another thread:
        the copy is taken in one step)."""
        return [(b.target, b.state) for b in list(self._breakers.values())]

    def _apply(self, result: CircuitResult) -> CircuitResult:
        self._breakers[result.breaker.target] = result.breaker
        if result.transition is not None:
            t = result.transition
            self.transitions.append(t)
            log.warning("circuit_transition", target=t.target, from_state=t.from_state.value,
                        to_state=t.to_state.value, consecutive_failures=t.consecutive_failures,
                        open_until=t.open_until.isoformat() if t.open_until else None)
            if self.on_transition is not None:
                self.on_transition(t)
        return result

    def admit(self, target: str, now: datetime) -> None:
        """Let a call to `target` start, or raise `CircuitOpen` (retryable)."""
        result = self._apply(admit(self.breaker(target), now))
        if not result.allowed:
            raise CircuitOpen(target, result.breaker.open_until)

    def succeeded(self, target: str, now: datetime) -> None:
        """The target answered (even a 4xx: it is up)."""
        self._apply(record_success(self.breaker(target), now))

    def failed(self, target: str, now: datetime) -> None:
        """The target failed (5xx, 429, timeout, no connection)."""
        self._apply(record_failure(self.breaker(target), self.policy, now))

    @asynccontextmanager
    async def guard(self, target: str, clock: Callable[[], datetime]) -> AsyncIterator[None]:
        """Admit a call, then report it: a `RetryableStepError` inside counts as a failure.

        A `PermanentStepError` (a 4xx) counts as a success: the target is up and answering.
        """
        self.admit(target, clock())
        try:
            yield
        except RetryableStepError:
            self.failed(target, clock())
            raise
        except PermanentStepError:
            self.succeeded(target, clock())
            raise
        except BaseException:
            # Not the target's fault (bad input, cancellation): no verdict, free the probe.
            self._apply(release(self.breaker(target)))
            raise
        else:
            self.succeeded(target, clock())

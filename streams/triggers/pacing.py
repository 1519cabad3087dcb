"""How often a polling trigger may call its URL: a sliding one-minute budget and the back-off.

Pure (the caller passes the clock's reading), so tests drive it with a made-up clock.
"""

from __future__ import annotations

from collections import deque

__all__ = ["RequestBudget", "next_backoff"]

_WINDOW_S = 60.0


class RequestBudget:
    """At most `per_minute` requests in any 60 s: `wait_s` says how long until the next may go.

    A sliding log of the last requests' times, not a fixed minute, so a burst at the end of one
    minute and the start of the next cannot double the rate. None: no limit.
    """

    def __init__(self, per_minute: int | None) -> None:
        self.per_minute = per_minute
        self._sent: deque[float] = deque()

    def _forget(self, now: float) -> None:
        # One expression decides "still in the last minute" everywhere (t + 60 - now > 0), so
        # float rounding can never count a request as gone here and as present in wait_s.
        while self._sent and self._sent[0] + _WINDOW_S - now <= 0:
            self._sent.popleft()

    def wait_s(self, now: float) -> float:
        """Seconds from `now` until a request keeps within the budget (0: at once)."""
        if not self.per_minute:
            return 0.0
        self._forget(now)
        if len(self._sent) < self.per_minute:
            return 0.0
        return self._sent[-self.per_minute] + _WINDOW_S - now

    def sent(self, now: float) -> None:
        """Count a request made at `now`."""
        if self.per_minute:
            self._forget(now)
            self._sent.append(now)


def next_backoff(previous_s: float, initial_s: float, multiplier: float, max_s: float) -> float:
    """The wait after a failed poll: `initial_s` first, then x `multiplier`, at most `max_s`."""
    return min(max_s, previous_s * multiplier if previous_s else initial_s)

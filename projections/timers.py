"""Projects durable timers (TimerSet, TimerFired) into `timers`."""

from __future__ import annotations

from bend.core.events import Event, TimerFired, TimerSet
from projections.writes import Write

__all__ = ["writes"]

_SET = """
INSERT INTO timers (timer_id, run_id, step_id, purpose, status, fire_at, set_at)
VALUES ($1, $2, $3, $4, 'set', $5, $6)
ON CONFLICT (timer_id) DO UPDATE SET
    fire_at = EXCLUDED.fire_at, set_at = EXCLUDED.set_at,
    status = CASE WHEN timers.status = 'fired' THEN 'fired' ELSE 'set' END
"""

_FIRED = """
INSERT INTO timers (timer_id, run_id, step_id, purpose, status, fired_at)
VALUES ($1, $2, $3, $4, 'fired', $5)
ON CONFLICT (timer_id) DO UPDATE SET status = 'fired', fired_at = EXCLUDED.fired_at
"""


def writes(ev: Event) -> list[Write]:
    """The write one timer event makes to its timer's row."""
    ln = ("timer", getattr(ev, "timer_id", None))
    match ev:
        case TimerSet():
            return [Write(ln, _SET, (ev.timer_id, ev.run_id, ev.step_id, ev.purpose, ev.fire_at,
                                     ev.occurred_at))]
        case TimerFired():
            return [Write(ln, _FIRED, (ev.timer_id, ev.run_id, ev.step_id, ev.purpose,
                                       ev.occurred_at))]
    return []

"""Triggers: what starts runs without a caller, in the pure core.

- definitions.py: the trigger definitions (schedule, webhook, kafka, polling, manual), refused
  with every reason when created (`parse_trigger`)
- state.py: a trigger's state folded from its firings (`apply`, `fold`)
- schedules.py: when a schedule is due (next, missed, backfill, dedupe keys), from
  schedule_spec.py (the spec), schedule_cron.py (cron fields) and schedule_calendar.py (the
  calendar walk); errors.py: the triggers' and schedules' errors
"""

from bend.core.triggers.definitions import (
    TRIGGER_TYPES, Backoff, CursorChange, HashChange, KafkaTrigger, ManualTrigger, PollingTrigger,
    ScheduleTrigger, TriggerDefinition, WebhookTrigger, parse_schedule, parse_trigger,
)
from bend.core.triggers.state import (
    RECENT_KEYS, TriggerState, apply, fold, initial_state, record_error,
)

__all__ = [
    "Backoff", "CursorChange", "HashChange", "KafkaTrigger", "ManualTrigger", "PollingTrigger",
    "RECENT_KEYS", "ScheduleTrigger", "TRIGGER_TYPES", "TriggerDefinition", "TriggerState",
    "WebhookTrigger", "apply", "fold", "initial_state", "parse_schedule", "parse_trigger",
    "record_error",
]

"""Polling triggers: GET the URL every interval, fire when the body (or its cursor) changed.

The last value seen travels in the firing's dedupe key (`<trigger_id>#<n>:<marker>`), so a
restarted poller reads it back from the triggers topic and neither misses nor repeats a change.
Failed polls back off (initial x multiplier each, up to max) and are recorded as TriggerFailed.
`max_requests_per_minute` holds for every request, failed ones and back-off included
(`streams.triggers.pacing.RequestBudget`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import httpx
import jmespath
import structlog

from bend.core.triggers import CursorChange, PollingTrigger
from bend.settings import EgressSettings
from streams.executors.egress import EgressRefused, guarded_client
from streams.triggers.book import Trigger, TriggerBook
from streams.triggers.firing import Firer
from streams.triggers.pacing import RequestBudget, next_backoff

__all__ = ["last_marker", "marker", "poll_forever"]

log = structlog.get_logger(__name__)


class UnreadableBody(ValueError):
    """A response that says it is JSON but does not parse (cut short, or broken)."""


def _body(response: httpx.Response) -> Any:
    media = response.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        return response.json()
    except ValueError as exc:
        if media == "application/json" or media.endswith("+json"):
            raise UnreadableBody(f"{response.request.url} answered {media} that does not "
                                 f"parse ({exc})") from None
        return response.text


def marker(trigger: PollingTrigger, response: httpx.Response) -> str | None:
    """What identifies this response's content: the body's hash or the cursor's; None: no cursor."""
    if isinstance(trigger.change_detection, CursorChange):
        cursor = jmespath.search(trigger.change_detection.cursor, _body(response))
        if cursor is None:
            return None
        return hashlib.sha256(json.dumps(cursor, sort_keys=True).encode()).hexdigest()[:32]
    return hashlib.sha256(response.content).hexdigest()[:32]


def _reason(exc: Exception) -> str:
    if isinstance(exc, EgressRefused):
        return exc.message
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code} from {exc.request.url}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def last_marker(trigger: Trigger) -> str | None:
    """The marker of the trigger's latest firing, from its dedupe key."""
    if trigger.last_fired is None:
        return None
    return trigger.last_fired.dedupe_key[len(trigger.trigger_id) + 1:].partition(":")[2]


async def poll_forever(trigger_id: str, book: TriggerBook, firer: Firer,
                       egress: EgressSettings | None = None) -> None:
    """Poll one trigger until it is removed or disabled (the caller cancels on changes); its
    URL is reached only where the egress policy allows (every address, without `egress`)."""
    delay = 0.0
    loop = asyncio.get_running_loop()
    budget = RequestBudget(None)
    egress = egress or EgressSettings(allow_private=True)
    async with guarded_client(egress, max_connections=2, timeout_s=10.0) as client:
        while (trigger := book.triggers.get(trigger_id)) is not None and trigger.enabled:
            spec: PollingTrigger = trigger.definition
            every = float(spec.interval_seconds)
            if spec.max_requests_per_minute:
                every = max(every, 60.0 / spec.max_requests_per_minute)
            budget.per_minute = spec.max_requests_per_minute
            if (wait := budget.wait_s(loop.time())) > 0:
                await asyncio.sleep(wait)
                continue  # the definition may have changed meanwhile
            budget.sent(loop.time())
            try:
                response = await client.get(spec.url)
                response.raise_for_status()
                body = _body(response)  # a JSON answer that does not parse is a failed poll
                seen = marker(spec, response)
            except (httpx.HTTPError, jmespath.exceptions.JMESPathError, EgressRefused,
                    UnreadableBody) as exc:
                delay = next_backoff(delay, spec.backoff.initial_seconds,
                                     spec.backoff.multiplier, spec.backoff.max_seconds)
                log.warning("poll_failed", trigger_id=trigger_id, url=spec.url, retry_in_s=delay)
                await firer.failed(trigger, "poll", _reason(exc), spec.url)
                await asyncio.sleep(delay)
                continue
            delay = 0.0
            if seen is not None and seen != last_marker(trigger):
                key = f"{trigger_id}#{trigger.state.fire_count + 1}:{seen}"
                run_input = (jmespath.search(spec.input_mapping, body)
                             if spec.input_mapping else body)
                await firer.fire(trigger, key, run_input)
            await asyncio.sleep(every)

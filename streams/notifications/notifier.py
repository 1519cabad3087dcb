"""The notifier: follows the run log in its own consumer group and sends what runs' workflows
ask for in `notifications` (bend.core.notifications) on their failures, ends and approvals.

A run's notifications come with its RunRequested (the definition it pins), kept in memory
while the run is open, else from the run's row in the read model; a backtest's runs
(RunRequested.backtest_id) notify no one. Each delivery is logged in
`notification_deliveries` under its deterministic id before it is sent and marked delivered or
failed after: an event read again (a crash before the offset was committed, a rebalance) finds
its deliveries done and sends nothing twice; one cut off while it was being sent is sent again
(at least once; receivers drop duplicates by `X-Bend-Delivery`). Offsets are committed after
each batch is handled.
"""

from __future__ import annotations

from typing import Any

import httpx
import structlog

from bend.core.errors import BendError
from bend.core.events import Event, RunRequested
from bend.core.notifications import Notification, Planned, kind_of_event, planned
from bend.settings import Settings
from projections.queries import notifications as deliveries
from projections.queries import runs as run_queries
from streams.executors.egress import EgressPolicy, GuardedTransport
from streams.executors.secrets import SecretResolver, StoreSecrets
from streams.follow import RUN_ENDS, RunLogFollower, RunMemo, entries_of
from streams.notifications.send import Outcome, send_email, send_webhook

__all__ = ["Notifier", "notifications_of"]

log = structlog.get_logger(__name__)


def notifications_of(definition: Any) -> tuple[Notification, ...]:
    """The notifications a definition (JSON data) asks for; none if it asks for none."""
    return entries_of(definition, "notifications", Notification)


class Notifier(RunLogFollower):
    """Sends the notifications of the settings' runs; `await run()` until cancelled."""

    role = "notifier"

    def __init__(self, settings: Settings, *, group_id: str | None = None,
                 http: httpx.AsyncClient | None = None,
                 secrets: SecretResolver | None = None) -> None:
        super().__init__(settings, group_id=group_id)
        self.sent = 0  # deliveries made since start (delivered or failed)
        self._http = http
        self._own_http = http is None
        self._secrets = secrets
        self._runs: RunMemo[tuple[Notification, ...]] = RunMemo()

    async def open(self) -> None:
        if self._http is None:
            self._http = httpx.AsyncClient(transport=GuardedTransport(
                EgressPolicy.of(self.settings.egress), httpx.Limits(max_connections=20)))
        if self._secrets is None:
            self._secrets = StoreSecrets.of(self.settings)

    async def close(self) -> None:
        if self._own_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    async def on_event(self, event: Event) -> None:
        """Notify what one run event asks for."""
        assert event.run_id
        if isinstance(event, RunRequested):  # a backtest's runs notify no one
            self._runs.keep(event.run_id, () if event.backtest_id
                            else notifications_of(event.definition))
        if not kind_of_event(event):
            return
        notifications = await self._notifications(event.run_id)
        for plan in planned(event, notifications):
            await self._deliver(event, plan)
        if event.event_type in RUN_ENDS:
            self._runs.drop(event.run_id)  # ended: nothing more to notify

    async def _notifications(self, run_id: str) -> tuple[Notification, ...]:
        kept = self._runs.get(run_id)
        if kept is not None:
            return kept
        row = await run_queries.started_with(self.pool, run_id)
        found = notifications_of(row["definition"]) if row and not row["backtest_id"] else ()
        self._runs.keep(run_id, found)
        return found

    async def _deliver(self, event: Event, plan: Planned) -> None:
        assert self._http is not None and self._secrets is not None
        note = plan.notification
        channel, target = ("webhook", note.webhook.url) if note.webhook is not None else \
            ("email", ", ".join(note.email.to if note.email is not None else ()))
        before = await deliveries.begin(
            self.pool, delivery_id=plan.delivery_id, run_id=event.run_id or "",
            project=event.project, workflow_id=event.workflow_id, event=plan.kind,
            event_id=event.event_id, channel=channel, target=target)
        if before in ("delivered", "failed"):
            return  # sent already: this event was read again
        try:
            outcome = await self._send(event, plan)
        except Exception as exc:  # one delivery never stops the others
            log.exception("notification_error", delivery_id=plan.delivery_id)
            outcome = Outcome(False, 1, None, f"{type(exc).__name__}: {exc}")
        await self._done(plan, outcome)

    async def _send(self, event: Event, plan: Planned) -> Outcome:
        assert self._http is not None and self._secrets is not None
        note = plan.notification
        notify = self.settings.notify
        if note.webhook is not None:
            secret = None
            if note.webhook.secret:
                try:
                    secret = (await self._secrets.secret(note.webhook.secret,
                                                         event.project)).value
                except BendError as exc:
                    return Outcome(False, 0, None, exc.message)
            return await send_webhook(self._http, notify, note.webhook.url, plan.body, secret)
        assert note.email is not None
        return await send_email(notify, note.email.to, plan.body)

    async def _done(self, plan: Planned, outcome: Outcome) -> None:
        await deliveries.finish(self.pool, plan.delivery_id, delivered=outcome.delivered,
                                attempts=outcome.attempts,
                                response_status=outcome.response_status, error=outcome.error)
        self.sent += 1
        log.info("notification_sent", delivery_id=plan.delivery_id, kind=plan.kind,
                 delivered=outcome.delivered, attempts=outcome.attempts,
                 status=outcome.response_status, error=outcome.error)

"""The notifier: follows the run log in its own consumer group and sends what runs' workflows
ask for in `notifications` (bend.core.notifications) on their failures, ends and approvals.

A run's notifications come with its RunRequested (the definition it pins), kept in memory
while the run is open, else from the run's row in the read model. Each delivery is logged in
`notification_deliveries` under its deterministic id before it is sent and marked delivered or
failed after: an event read again (a crash before the offset was committed, a rebalance) finds
its deliveries done and sends nothing twice; one cut off while it was being sent is sent again
(at least once; receivers drop duplicates by `X-Bend-Delivery`). Offsets are committed after
each batch is handled.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

import httpx
import structlog
from pydantic import ValidationError

from bend.contracts.codec import codec_for
from bend.core.errors import BendError
from bend.core.events import Event, RunRequested
from bend.core.notifications import Notification, Planned, kind_of_event, planned
from bend.settings import Settings
from projections.db import create_pool, database_url
from projections.migrate import migrate
from projections.queries import notifications as deliveries
from streams.executors.egress import EgressPolicy, GuardedTransport
from streams.executors.secrets import SecretResolver, StoreSecrets
from streams.follow import follow_run_log
from streams.notifications.send import Outcome, send_email, send_webhook

__all__ = ["Notifier", "notifications_of"]

log = structlog.get_logger(__name__)

_KEPT_RUNS = 50_000  # open runs whose notifications are kept in memory


def notifications_of(definition: Any) -> tuple[Notification, ...]:
    """The notifications a definition (JSON data) asks for; none if it asks for none."""
    raw = definition.get("notifications") if isinstance(definition, dict) else None
    if not raw:
        return ()
    try:
        return tuple(Notification.model_validate(n) for n in raw)
    except ValidationError as exc:
        log.warning("notifications_unreadable", error=str(exc)[:300])
        return ()


class Notifier:
    """Sends the notifications of the settings' runs; `await run()` until cancelled."""

    def __init__(self, settings: Settings, *, group_id: str | None = None,
                 http: httpx.AsyncClient | None = None,
                 secrets: SecretResolver | None = None) -> None:
        self.settings = settings
        self.group_id = group_id or f"{settings.kafka.topic_prefix}-notifier"
        self.read = 0  # run-log records handled since start
        self.sent = 0  # deliveries made since start (delivered or failed)
        self.ready = asyncio.Event()  # set once the consumer has partitions
        self._http = http
        self._secrets = secrets
        self._decode = codec_for(settings).decode
        self._runs: OrderedDict[str, tuple[Notification, ...]] = OrderedDict()
        self._pool: Any = None  # an asyncpg Pool

    async def run(self) -> None:
        """Follow the run log and notify, until cancelled."""
        schema = self.settings.database.schema_name
        self._pool = pool = await create_pool(database_url(self.settings), schema,
                                              min_size=1, max_size=2)
        own_http = self._http is None
        if self._http is None:
            self._http = httpx.AsyncClient(transport=GuardedTransport(
                EgressPolicy.of(self.settings.egress), httpx.Limits(max_connections=20)))
        if self._secrets is None:
            self._secrets = StoreSecrets.of(self.settings)
        try:
            async with pool.acquire() as conn:
                await migrate(conn, schema)
            await follow_run_log(self.settings, self.group_id, self.handle, self.ready)
        finally:
            if own_http:
                await self._http.aclose()
            await pool.close()

    async def handle(self, raw: bytes) -> None:
        """Notify what one run-log record asks for."""
        self.read += 1
        try:
            event = self._decode(raw)
        except BendError as exc:
            log.warning("notifier_undecodable", error=exc.message)
            return
        if not isinstance(event, Event) or not event.run_id:
            return
        if isinstance(event, RunRequested):
            self._keep(event.run_id, notifications_of(event.definition))
        if not kind_of_event(event):
            return
        notifications = await self._notifications(event.run_id)
        for plan in planned(event, notifications):
            await self._deliver(event, plan)
        if event.event_type in ("RunCompleted", "RunFailed", "RunCancelled"):
            self._runs.pop(event.run_id, None)  # ended: nothing more to notify

    def _keep(self, run_id: str, notifications: tuple[Notification, ...]) -> None:
        self._runs[run_id] = notifications
        self._runs.move_to_end(run_id)
        while len(self._runs) > _KEPT_RUNS:
            self._runs.popitem(last=False)

    async def _notifications(self, run_id: str) -> tuple[Notification, ...]:
        kept = self._runs.get(run_id)
        if kept is not None:
            return kept
        assert self._pool is not None
        definition = await self._pool.fetchval("SELECT definition FROM runs WHERE run_id = $1",
                                               run_id)
        found = notifications_of(definition)
        self._keep(run_id, found)
        return found

    async def _deliver(self, event: Event, plan: Planned) -> None:
        assert self._pool is not None and self._http is not None and self._secrets is not None
        note = plan.notification
        channel, target = ("webhook", note.webhook.url) if note.webhook is not None else \
            ("email", ", ".join(note.email.to if note.email is not None else ()))
        before = await deliveries.begin(
            self._pool, delivery_id=plan.delivery_id, run_id=event.run_id or "",
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
        assert self._pool is not None
        await deliveries.finish(self._pool, plan.delivery_id, delivered=outcome.delivered,
                                attempts=outcome.attempts,
                                response_status=outcome.response_status, error=outcome.error)
        self.sent += 1
        log.info("notification_sent", delivery_id=plan.delivery_id, kind=plan.kind,
                 delivered=outcome.delivered, attempts=outcome.attempts,
                 status=outcome.response_status, error=outcome.error)

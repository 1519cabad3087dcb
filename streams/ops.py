"""A Faust worker's ops server: heartbeat, consumer lag of its partitions, readiness checks.

Ready means Kafka answers and the process holds partitions of its role's consumer group;
the role's topics need no Postgres, so its reachability is no condition here (the projector
and the API check it).
"""

from __future__ import annotations

from typing import Any

import faust
import structlog

from bend.ops.health import Heartbeat, assignment_check, kafka_check
from bend.ops.metrics import consumer_lag, set_consumer_lag
from bend.ops.server import OpsServer, start_ops_server
from bend.settings import Settings

__all__ = ["attach_ops"]

log = structlog.get_logger(__name__)


class _Assignment:
    """The partitions the app holds, kept from its rebalance signals (read by the probe)."""

    def __init__(self, app: faust.App) -> None:
        self.app = app
        self.partitions: frozenset[tuple[str, int]] = frozenset()
        # mode types a handler as taking any positional arguments; this signal sends one.
        app.on_partitions_assigned.connect(self._assigned)  # type: ignore[arg-type]
        app.on_partitions_revoked.connect(self._revoked)  # type: ignore[arg-type]

    async def _assigned(self, sender: Any, assigned: Any, **_: Any) -> None:
        self.partitions = frozenset((tp.topic, tp.partition) for tp in assigned)

    async def _revoked(self, sender: Any, revoked: Any, **_: Any) -> None:
        self.partitions -= {(tp.topic, tp.partition) for tp in revoked}

    def current(self) -> frozenset[tuple[str, int]]:
        """The partitions held now."""
        return self.partitions


async def publish_lag(app: faust.App, group: str) -> None:
    """Set `bend_consumer_lag` for each assigned partition: highwater - position."""
    consumer = app.consumer
    tps = consumer.assignment()
    highwaters = await consumer.highwaters(*tps) if tps else {}
    lags = {}
    for tp in tps:
        lag = consumer_lag(highwaters.get(tp), await consumer.position(tp))
        if lag is not None:
            lags[(tp.topic, tp.partition)] = lag
    set_consumer_lag(group, lags)


def attach_ops(app: faust.App, role: str, settings: Settings) -> OpsServer | None:
    """Start `role`'s ops server and add the heartbeat and lag timers to the app."""
    group = app.conf.id  # the role's consumer group, `<prefix>-<role>`
    heartbeat = Heartbeat(settings.ops.stall_after_s)
    held = _Assignment(app)
    checks = {"kafka": kafka_check(settings.kafka, settings.ops.check_timeout_s),
              "assignment": assignment_check(group, held.current)}
    server = start_ops_server(settings.ops, role, checks=checks, heartbeat=heartbeat)

    # faust's App.timer returns a bare Callable (its decorator is untyped).
    @app.timer(1.0, name=f"{role}-heartbeat")  # type: ignore[untyped-decorator]
    async def _beat() -> None:
        heartbeat.beat()

    # faust's App.timer returns a bare Callable (its decorator is untyped).
    @app.timer(settings.ops.lag_interval_s, name=f"{role}-consumer-lag")  # type: ignore[untyped-decorator]
    async def _lag() -> None:
        try:
            await publish_lag(app, group)
        except Exception as err:  # no lag this round (rebalancing, consumer not started)
            log.debug("consumer_lag_unavailable", error=repr(err))

    return server

"""The `triggers` role: follows the triggers and workflows topics and runs the trigger agents.

The role's consumer group reads the triggers topic only to split ownership: a process fires
the triggers whose records live on the partitions it is assigned, so several processes share
the work and each due time is fired by one of them. During a rebalance two may fire the same
one; the shared dedupe key and run id make the copy harmless.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import structlog

from bend.core.triggers import KafkaTrigger, PollingTrigger
from bend.kafka.producer import RecordProducer
from bend.settings import Settings
from streams.app import topic_names
from streams.background import spawn
from streams.triggers.book import TriggerBook, WorkflowBook, follow_all
from streams.triggers.events import consume_forever
from streams.triggers.firing import Firer, clock_with_offset
from streams.triggers.polling import poll_forever
from streams.triggers.scheduler import Scheduler

__all__ = ["Triggers"]

log = structlog.get_logger(__name__)


class Triggers:
    """Schedules, polling and Kafka event triggers for the partitions this process owns."""

    def __init__(self, app: faust.App, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.names = topic_names(settings)
        self.triggers_topic = app.topic(self.names.triggers)
        self.book = TriggerBook(fired_window=settings.triggers.kafka_fired_window)
        self.book_ready = asyncio.Event()
        self.workflows = WorkflowBook(settings.kafka, self.names.workflows)
        self.firer = Firer(None, self.book, self.workflows,
                           clock_with_offset(settings.triggers.clock_offset_s))
        self.scheduler = Scheduler(self.book, self.firer, self.owns)
        self._tasks: dict[str, tuple[Any, asyncio.Task[None]]] = {}

    def register(self) -> None:
        """Attach the ownership agent and the trigger tasks to the app."""
        self.app.agent(self.triggers_topic, name="triggers")(self._agent)
        self.app.task(self._main)

    async def _agent(self, stream: faust.StreamT[Any]) -> Any:
        async for _ in stream.events():  # the book follows every partition on its own
            yield None

    def owns(self, partition: int) -> bool:
        """Whether this process is assigned `partition` of the triggers topic."""
        return any(tp.topic == self.names.triggers and tp.partition == partition
                   for tp in self.app.assignor.assigned_actives())

    async def _main(self) -> None:
        producer = RecordProducer(self.settings)  # aiokafka needs the running loop
        await producer.start()
        self.firer.producer = producer
        spawn(follow_all(self.settings.kafka, self.names.triggers, self.book, self.book_ready),
              what="follow the triggers topic")
        spawn(self.workflows.follow(), what="follow the workflows topic")
        await self.book_ready.wait()
        await self.workflows.ready.wait()
        log.info("triggers_ready", triggers=len(self.book.triggers))
        while True:
            try:
                await self.scheduler.tick()
                self._supervise()
            except Exception:  # one bad trigger must not stop the others
                log.exception("triggers_tick_failed")
            await asyncio.sleep(self.settings.triggers.tick_s)

    def _supervise(self) -> None:
        """Start a task per owned polling or Kafka trigger; stop those gone or changed."""
        wanted: dict[str, tuple[Any, Callable[[], Awaitable[None]]]] = {}
        for trigger in self.book.of_type(PollingTrigger):
            if self.owns(trigger.partition):
                def poll(t: str = trigger.trigger_id) -> Awaitable[None]:
                    return poll_forever(t, self.book, self.firer, self.settings.egress)
                wanted[trigger.trigger_id] = (trigger.definition, poll)
        kafka = self.settings.kafka
        for trigger in self.book.of_type(KafkaTrigger):
            if self.owns(trigger.partition):  # a replay restarts the consumer in a new group
                replay = trigger.replay.replay_id if trigger.replay else None
                def consume(t: str = trigger.trigger_id) -> Awaitable[None]:
                    return consume_forever(t, self.book, self.firer, kafka.topic_prefix,
                                           kafka, kafka.schema_registry_url)
                wanted[trigger.trigger_id] = ((trigger.definition, replay), consume)
        for trigger_id, (definition, task) in list(self._tasks.items()):
            if wanted.get(trigger_id, (None,))[0] != definition or task.done():
                task.cancel()
                del self._tasks[trigger_id]
        for trigger_id, (definition, start) in wanted.items():
            if trigger_id not in self._tasks:
                self._tasks[trigger_id] = (definition, asyncio.ensure_future(start()))

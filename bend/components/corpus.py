"""A small offline corpus (a dozen short pages on durable event-driven systems) for the examples."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CORPUS", "Page", "pages_by_url"]

_BASE = "https://docs.bend.example"


@dataclass(frozen=True, slots=True)
class Page:
    """One page of the corpus."""

    url: str
    title: str
    text: str


CORPUS: tuple[Page, ...] = (
    Page(f"{_BASE}/event-sourcing", "Event sourcing",
         "Event sourcing stores every change to an application's state as an immutable event "
         "in an append-only log. The current state is a fold of the events, so any past state "
         "can be rebuilt by replaying the log up to a point. Audits, debugging and new read "
         "models all come from the same history."),
    Page(f"{_BASE}/kafka-log", "The Kafka log",
         "Apache Kafka keeps records in partitioned, replicated logs. Records with the same key "
         "land in the same partition and keep their order. Consumers track their position as an "
         "offset, which makes Kafka a durable event store for event sourcing at scale."),
    Page(f"{_BASE}/consumer-groups", "Kafka consumer groups",
         "A consumer group spreads a topic's partitions over its members. When a member dies, "
         "a rebalance moves its partitions to the survivors after the session timeout, so "
         "processing resumes from the last committed offset."),
    Page(f"{_BASE}/idempotency", "Idempotency keys",
         "At-least-once delivery means a step may run twice after a crash. Sending an "
         "idempotency key with every side effect lets the receiver recognise the repeat and "
         "return the first result instead of acting twice."),
    Page(f"{_BASE}/exactly-once", "Exactly-once processing",
         "Exactly-once processing combines idempotent producers, transactions and offsets "
         "committed with the output. In practice most systems pair at-least-once delivery with "
         "idempotent handlers, which is simpler and survives more failure modes."),
    Page(f"{_BASE}/sagas", "Sagas and compensation",
         "A saga splits a long business transaction into steps, each with a compensating "
         "action. When a later step fails, the orchestrator runs the compensations in reverse "
         "order instead of holding distributed locks."),
    Page(f"{_BASE}/circuit-breakers", "Circuit breakers",
         "A circuit breaker stops calling a failing dependency after several consecutive "
         "failures, waits for a cool-down, then lets one probe call through. A successful probe "
         "closes the circuit; a failed one opens it again, protecting both sides."),
    Page(f"{_BASE}/cqrs-projections", "CQRS and projections",
         "Command query responsibility segregation separates writes from reads. Projections "
         "consume the event log and maintain read models, such as tables in Postgres, that can "
         "be dropped and rebuilt from the log at any time."),
    Page(f"{_BASE}/durable-timers", "Durable timers",
         "Workflow engines implement delays, retries with backoff and timeouts as durable "
         "timers: the timer is an event in the log, so it fires even if the worker that set it "
         "crashed in the meantime."),
    Page(f"{_BASE}/replay-and-fork", "Replay and fork",
         "Because a run's history is a log of events, a run can be replayed deterministically "
         "to inspect it, or forked from a chosen step to try a different path. Recording every "
         "model and tool call keeps replays from calling the model again."),
    Page(f"{_BASE}/dead-letter-queues", "Dead-letter queues",
         "A dead-letter queue keeps the records no handler could process, together with the "
         "reason. Operators inspect them, fix the cause and re-drive the records, instead of "
         "losing data or blocking a partition."),
    Page(f"{_BASE}/ai-agents", "AI agents with tools",
         "An AI agent is a loop around a language model: the model either answers or asks for "
         "tool calls, the tools run and their results go back to the model. Bounding the number "
         "of iterations and recording each call makes agents durable and auditable."),
)


def pages_by_url() -> dict[str, Page]:
    """The corpus indexed by URL."""
    return {page.url: page for page in CORPUS}

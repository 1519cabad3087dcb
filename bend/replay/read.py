"""Recorded events read back from the run-events topic, with their topic, partition and offset."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from bend.archive.history import read_history
from bend.contracts.codec import codec_for
from bend.contracts.topics import topic_name
from bend.core.errors import BendError
from bend.core.events import Event
from bend.kafka.errors import KafkaUnavailable
from bend.settings import Settings

__all__ = ["KafkaUnavailable", "Recorded", "read_log", "run_events_of"]


@dataclass(frozen=True, slots=True)
class Recorded:
    """One event as the log holds it: where it sits and its encoded bytes."""

    topic: str
    partition: int
    offset: int
    raw: bytes
    event: Event


async def read_log(settings: Settings, *, run_ids: Iterable[str] | None = None,
                   partitions: Iterable[int] | None = None, since: datetime | None = None,
                   until: datetime | None = None) -> list[Recorded]:
    """Events of the run log (archived, then the topic up to its current end), filtered by run
    and time."""
    wanted = set(run_ids) if run_ids is not None else None
    topic = topic_name("runs", settings)
    out: list[Recorded] = []
    decode = codec_for(settings).decode  # either framing when a registry is configured
    # The archive's records first, then the log from where it ends (bend.archive.history).
    async for partition, record in read_history(settings, topic, partitions,
                                                fetch_bytes=8 * 1024 * 1024):
        kept = _keep(record, decode, wanted, since, until)
        if kept is not None:
            out.append(Recorded(topic, partition, record.offset, record.value or b"", kept))
    return out


def _keep(record: object, decode: Callable[[bytes], object], wanted: set[str] | None,
          since: datetime | None, until: datetime | None) -> Event | None:
    key = getattr(record, "key", None)
    if wanted is not None and key is not None and key.decode(errors="replace") not in wanted:
        return None  # skip decoding other runs' records: the key is the run id
    try:
        event = decode(getattr(record, "value", None) or b"")  # a tombstone decodes as none
    except BendError:
        return None  # undecodable records are the dead-letter tooling's business
    if not isinstance(event, Event) or not event.run_id:
        return None
    if wanted is not None and event.run_id not in wanted:
        return None
    if since is not None and event.occurred_at < since:
        return None
    if until is not None and event.occurred_at >= until:
        return None
    return event


async def run_events_of(settings: Settings, run_id: str,
                        partition: int | None = None) -> list[Recorded]:
    """The run's events in seq order, from `partition` if known, else from every partition."""
    found = await read_log(settings, run_ids=[run_id],
                           partitions=None if partition is None else [partition])
    return sorted(found, key=lambda r: (r.event.seq, r.offset))

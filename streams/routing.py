"""Where a run's records live: the partition its run id hashes to with murmur2, as Kafka's Java
client, aiokafka and Faust place a keyed record (and confluent-kafka with
`partitioner=murmur2_random`).

Every record of a run must meet on one partition number (the orchestrator decides a run on the
partition its commands arrive on, and writes its log to the same number). A command produced
with another hash (confluent-kafka's default is CRC32) lands elsewhere; the orchestrator forwards
it, unchanged, to its home partition instead of deciding it there.
"""

from __future__ import annotations

from functools import lru_cache

from aiokafka.partitioner import murmur2

__all__ = ["home_partition", "misrouted"]


# aiokafka's murmur2 is pure Python (~7 us for a run id); the orchestrator asks for every
# command, and a run's commands repeat its key, so the answers of recent runs are kept.
@lru_cache(maxsize=1 << 16)
def home_partition(key: bytes, partitions: int) -> int:
    """The partition of `key` among `partitions`: murmur2, positive, modulo the count."""
    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % partitions


def misrouted(key: bytes | None, partition: int, partitions: int) -> int | None:
    """The home partition of a keyed record that arrived on another one, else None."""
    if not key or partitions <= 1:
        return None
    home = home_partition(key, partitions)
    return None if home == partition else home

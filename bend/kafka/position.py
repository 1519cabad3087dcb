"""A record's place in Kafka (topic, partition, offset), and its `topic:partition:offset` token."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bend.kafka.errors import InvalidPosition

__all__ = ["Position"]

_DIGITS = re.compile(r"[0-9]{1,19}")


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """Where one record sits in the log."""

    topic: str
    partition: int
    offset: int

    @property
    def token(self) -> str:
        """`topic:partition:offset`, as `?wait_for=` takes it."""
        return f"{self.topic}:{self.partition}:{self.offset}"

    @classmethod
    def parse(cls, token: str) -> Position:
        """The position a `topic:partition:offset` token names (Kafka topic names hold no colon)."""
        topic, sep, rest = token.strip().rpartition(":")
        topic, sep2, partition = topic.rpartition(":")
        if not (sep and sep2 and topic):
            raise InvalidPosition(token)
        if not (_DIGITS.fullmatch(partition) and _DIGITS.fullmatch(rest)):
            raise InvalidPosition(token)
        try:
            position = cls(topic, int(partition), int(rest))
        except ValueError:
            raise InvalidPosition(token) from None
        # Kafka partitions are int32, offsets int64 (and Postgres columns the same).
        if not (0 <= position.partition < 2**31 and 0 <= position.offset < 2**63):
            raise InvalidPosition(token)
        return position

"""A record's place in Kafka (topic, partition, offset), and its `topic:partition:offset` token."""

from __future__ import annotations

from dataclasses import dataclass

from bend.kafka.errors import InvalidPosition

__all__ = ["Position"]


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
        try:
            position = cls(topic, int(partition), int(rest))
        except ValueError:
            raise InvalidPosition(token) from None
        if position.partition < 0 or position.offset < 0:
            raise InvalidPosition(token)
        return position

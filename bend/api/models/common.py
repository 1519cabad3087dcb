"""Bodies shared by every resource: log positions for read-your-writes."""

from __future__ import annotations

from pydantic import BaseModel, Field

from bend.kafka.position import Position

__all__ = ["LogPosition"]


class LogPosition(BaseModel):
    """Where a command's record landed; pass `token` as `?wait_for=` to read your own write."""

    topic: str
    partition: int
    offset: int
    token: str = Field(description="`topic:partition:offset`, for `?wait_for=`")

    @classmethod
    def of(cls, position: Position) -> LogPosition:
        """The body of a position."""
        return cls(topic=position.topic, partition=position.partition, offset=position.offset,
                   token=position.token)

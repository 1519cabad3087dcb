"""Small Kafka edges for the API and the projector: an encoding producer and offset look-ups."""

from bend.kafka.position import Position

__all__ = ["Position"]

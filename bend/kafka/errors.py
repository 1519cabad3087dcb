"""Typed errors of the Kafka edges; each says what to do."""

from __future__ import annotations

from bend.core.errors import BendError

__all__ = ["InvalidPosition", "KafkaRefused", "KafkaUnavailable"]


class KafkaUnavailable(BendError):
    """Kafka did not answer or refused a produce or metadata request."""

    status = 503
    retry_after = "5"  # seconds a client waits before asking again

    def __init__(self, bootstrap: str, detail: str) -> None:
        super().__init__(
            f"Kafka at {bootstrap} failed: {detail}; start the local one with `bend dev up`, "
            "or point BEND_KAFKA__BOOTSTRAP at a running cluster, then retry"
        )
        self.bootstrap = bootstrap


class KafkaRefused(KafkaUnavailable):
    """The brokers answer but refuse this client: its TLS handshake or its SASL login."""

    def __init__(self, bootstrap: str, detail: str) -> None:
        BendError.__init__(self, f"Kafka at {bootstrap} refused this client: {detail}")
        self.bootstrap = bootstrap


class InvalidPosition(BendError):
    """A `topic:partition:offset` token that does not parse."""

    status = 400

    def __init__(self, token: str) -> None:
        super().__init__(
            f"{token!r} is not a log position; pass `topic:partition:offset` as a command "
            "response gave it (e.g. bend.workflows:2:17)"
        )
        self.token = token

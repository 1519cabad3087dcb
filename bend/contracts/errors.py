"""Typed errors of the event contracts: codec, schema history and topics; each says what to do."""

from __future__ import annotations

from collections.abc import Sequence

from bend.core.errors import BendError

__all__ = [
    "ContractError", "CorruptPayload", "IncompatibleSchema", "KafkaAdminFailed", "MissingKey",
    "RegistryUnavailable", "SchemaViolation", "TopicMismatch", "UnknownEventType",
    "UnknownSchema", "UnrecordedSchema",
]

_RECORD = "python -m bend.contracts.history record"


class ContractError(BendError):
    """Root of the errors about records on the wire, their schemas and their topics."""

    status = 500


class UnknownEventType(ContractError):
    """A record type that is not in Bend's event and command catalogue."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"{name!r} is not an event or command Bend knows (bend/core/events.py EVENT_TYPES, "
            "bend/core/commands.py COMMAND_TYPES); add the class to the catalogue and its "
            f"schema to schemas/avro/, or upgrade this Bend if a newer one wrote the record"
        )
        self.name = name


class UnknownSchema(ContractError):
    """The writer schema named by a record (fingerprint or registry id) is not known here."""

    def __init__(self, reference: str, known: int, hint: str = "") -> None:
        super().__init__(
            f"writer schema {reference} is not among the {known} schemas this Bend knows "
            "(schemas/avro/ and schemas/avro/history/); the record was written by a newer Bend "
            f"or a foreign producer: upgrade this Bend, or record the schema with `{_RECORD}`"
            + (f" ({hint})" if hint else "")
        )
        self.reference = reference


class CorruptPayload(ContractError):
    """Bytes that are not one whole Avro record in a format Bend reads."""

    def __init__(self, reason: str, size: int) -> None:
        super().__init__(
            f"cannot decode a {size}-byte record: {reason}; the producer did not write it with "
            "bend.contracts.codec (or it was cut): dead-letter it and inspect it with its offset"
        )
        self.reason = reason
        self.size = size


class SchemaViolation(ContractError):
    """A record whose values do not fit its schema."""

    def __init__(self, record_type: str, field: str, problem: str) -> None:
        super().__init__(
            f"{record_type}.{field}: {problem}; build the record with values of the types its "
            f"dataclass declares (schemas/avro/{record_type}.avsc)"
        )
        self.record_type = record_type
        self.field = field


class RegistryUnavailable(ContractError):
    """The configured schema registry did not answer or refused a request."""

    def __init__(self, url: str, detail: str) -> None:
        super().__init__(
            f"schema registry {url} failed: {detail}; check BEND_KAFKA__SCHEMA_REGISTRY_URL and "
            "that the registry is up, or unset it to use Avro single-object encoding"
        )
        self.url = url


class IncompatibleSchema(ContractError):
    """A schema change that new readers cannot apply to data written with an old version."""

    def __init__(self, name: str, reasons: Sequence[str]) -> None:
        listed = "; ".join(reasons)
        super().__init__(
            f"schema {name} cannot read data written with its recorded versions: {listed}; "
            "give added fields a default, keep removed enum symbols, widen types only "
            "(int->long->float->double), or add a new record type instead"
        )
        self.name = name
        self.reasons = tuple(reasons)


class UnrecordedSchema(ContractError):
    """A schema whose current text differs from its latest recorded version."""

    def __init__(self, names: Sequence[str]) -> None:
        super().__init__(
            f"schemas changed without a recorded version: {', '.join(names)}; run `{_RECORD}` "
            "and commit schemas/avro/history/"
        )
        self.names = tuple(names)


class TopicMismatch(ContractError):
    """Existing topics whose layout differs from what Bend needs; never ignored."""

    def __init__(self, differences: Sequence[str]) -> None:
        listed = "\n  - ".join(differences)
        super().__init__(
            f"{len(differences)} topic setting(s) differ from what Bend needs:\n  - {listed}\n"
            "Fix them with kafka-configs.sh / kafka-topics.sh --alter (partitions can only "
            "grow; a smaller count or another cleanup policy needs a new topic or another "
            "BEND_KAFKA__TOPIC_PREFIX), then start again"
        )
        self.differences = tuple(differences)


class MissingKey(ContractError):
    """A record without the id its topic is keyed by."""

    def __init__(self, record_type: str, event_id: str, key_field: str) -> None:
        super().__init__(
            f"{record_type} {event_id} has no {key_field}, which its topic is keyed by; set it "
            "when building the record (records of one key stay in order on one partition)"
        )
        self.record_type = record_type
        self.event_id = event_id


class KafkaAdminFailed(ContractError):
    """Kafka did not answer or refused a topic request."""

    def __init__(self, bootstrap: str, detail: str) -> None:
        super().__init__(
            f"Kafka at {bootstrap} failed a topic request: {detail}; start the local one with "
            "`bend dev up`, or point BEND_KAFKA__BOOTSTRAP at a running cluster"
        )
        self.bootstrap = bootstrap

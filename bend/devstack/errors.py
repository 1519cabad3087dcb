"""Typed errors of the local stack; each says what went wrong and what to do about it."""

from __future__ import annotations

from pathlib import Path

from bend.core.errors import BendError

__all__ = [
    "DatabaseUnreachable",
    "DevStackError",
    "DownloadFailed",
    "JavaMissing",
    "MavenMissing",
    "NotAnswering",
    "PortTaken",
    "ServiceFailed",
]


class DevStackError(BendError):
    """Root of the errors `bend dev` raises."""


class JavaMissing(DevStackError):
    """No `java` to run the Kafka broker with."""

    def __init__(self) -> None:
        super().__init__(
            "Java is not installed (no `java` on PATH or under JAVA_HOME); the local Kafka "
            "needs a JDK 17, e.g. `apt-get install openjdk-17-jre-headless`"
        )


class MavenMissing(DevStackError):
    """No `mvn` to download the Kafka jars with."""

    def __init__(self) -> None:
        super().__init__(
            "Maven is not installed (no `mvn` on PATH); it downloads the Kafka jars once, "
            "e.g. `apt-get install maven`"
        )


class PortTaken(DevStackError):
    """A port the local stack needs is held by another process."""

    def __init__(self, port: int, setting: str) -> None:
        super().__init__(
            f"port {port} on 127.0.0.1 is already taken by another process; stop that "
            f"process or set {setting} to a free port"
        )
        self.port = port
        self.setting = setting


class DownloadFailed(DevStackError):
    """Maven could not fetch the Kafka jars."""

    def __init__(self, tail: str) -> None:
        super().__init__(
            "downloading the Kafka jars with Maven failed; Maven Central "
            "(repo.maven.apache.org) must be reachable and BEND_DEV__KAFKA_VERSION must be "
            "a released version. mvn said:\n" + tail
        )
        self.tail = tail


class NotAnswering(DevStackError):
    """A service was launched but did not answer in time."""

    def __init__(self, service: str, timeout_s: float, log_path: Path) -> None:
        super().__init__(
            f"{service} did not answer within {timeout_s:.0f} s; see {log_path} "
            "(raise BEND_DEV__START_TIMEOUT_S if the machine is just slow)"
        )
        self.service = service
        self.log_path = log_path


class ServiceFailed(DevStackError):
    """A service exited or a setup step failed; the message carries its log's tail."""

    def __init__(self, service: str, what: str, log_path: Path | None, tail: str = "") -> None:
        where = f"; see {log_path}" if log_path else ""
        detail = f":\n{tail}" if tail else ""
        super().__init__(f"{service} {what}{where}{detail}")
        self.service = service
        self.log_path = log_path


class DatabaseUnreachable(DevStackError):
    """The external Postgres named by BEND_DATABASE_URL does not answer."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"the Postgres at {url} (BEND_DATABASE_URL) does not answer: {reason}; start it, "
            "or unset BEND_DATABASE_URL so `bend dev up` runs an embedded one"
        )
        self.url = url

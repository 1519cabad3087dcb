"""Typed configuration: one `Settings` read from `BEND_*` variables, with local defaults."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class KafkaSettings(BaseModel):
    """How Bend reaches Kafka (`BEND_KAFKA__BOOTSTRAP=127.0.0.1:19092`)."""

    bootstrap: str = "127.0.0.1:19092"
    client_id: str = "bend"
    schema_registry_url: str | None = None
    topic_prefix: str = "bend"
    default_partitions: int = Field(default=4, ge=1)
    replication_factor: int = Field(default=1, ge=1)


class DatabaseSettings(BaseModel):
    """Postgres for projections; `url` unset means the embedded Postgres of `bend dev up`."""

    url: str | None = None
    schema_name: str = "bend"  # the read models' schema (a rebuild fills another, then swaps)
    min_pool: int = 1
    max_pool: int = 10


class DevSettings(BaseModel):
    """The local stack started by `bend dev up` (no Docker)."""

    state_dir: Path = PROJECT_ROOT / ".bend"
    kafka_version: str = "3.9.2"
    kafka_port: int = 19092
    kafka_controller_port: int = 19093
    kafka_heap: str = "512m"
    postgres_port: int = 55432
    postgres_user: str = "bend"
    postgres_password: str = "bend"
    postgres_db: str = "bend"
    start_timeout_s: float = 90.0


class LogSettings(BaseModel):
    """Structured logs: JSON in services, readable in a terminal."""

    level: str = "INFO"
    format: Literal["auto", "json", "console"] = "auto"


class ApiSettings(BaseModel):
    """The REST API process."""

    host: str = "127.0.0.1"
    port: int = 8000


class WorkerSettings(BaseModel):
    """Faust workers (orchestrator, executors): group timing and executor concurrency."""

    session_timeout_s: float = 6.0
    heartbeat_interval_s: float = 1.0
    commit_interval_s: float = 1.0
    executor_concurrency: int = Field(default=32, ge=1)
    # A step still running after this long is reported started at once; a quicker one is
    # reported only by its end (which carries its duration), halving its commands.
    report_started_after_ms: int = Field(default=200, ge=0)
    worker_id: str | None = None


class TriggerSettings(BaseModel):
    """The `triggers` worker: how often schedules are checked, and a clock offset for tests."""

    tick_s: float = Field(default=0.5, gt=0)
    clock_offset_s: float = 0.0  # added to the wall clock; tests simulate an outage with it


class SecuritySettings(BaseModel):
    """API keys, tokens, secrets at rest, limits and webhook checks (`BEND_SECURITY__JWT_SECRET`).

    Unset keys are generated once into `<dev.state_dir>/security/` (0600) for local use; several
    API processes on different machines must share them, so set them there.
    """

    jwt_secret: SecretStr | None = None  # >= 32 bytes; unset: security/jwt.key
    jwt_issuer: str = "bend"
    jwt_audience: str = "bend-api"
    token_ttl_s: int = Field(default=900, ge=1)
    api_key_pepper: SecretStr | None = None  # unset: security/api_key_pepper.key
    secrets_key: SecretStr | None = None  # base64 of 32 bytes (AES-256-GCM); unset: the key file
    secrets_key_path: Path | None = None  # unset: security/secrets.key
    key_rate_per_s: float = Field(default=20.0, gt=0)
    key_burst: int = Field(default=40, ge=1)
    ip_rate_per_s: float = Field(default=50.0, gt=0)
    ip_burst: int = Field(default=100, ge=1)
    body_limit_bytes: int = Field(default=1_048_576, ge=1)
    webhook_tolerance_s: int = Field(default=300, ge=1)


class Settings(BaseSettings):
    """All of Bend's configuration; nested sections use `__` (`BEND_DEV__KAFKA_PORT`)."""

    model_config = SettingsConfigDict(
        env_prefix="BEND_", env_nested_delimiter="__", extra="ignore"
    )

    tenant: str = "default"
    project: str = "default"
    kafka: KafkaSettings = KafkaSettings()
    database: DatabaseSettings = DatabaseSettings()
    dev: DevSettings = DevSettings()
    log: LogSettings = LogSettings()
    api: ApiSettings = ApiSettings()
    workers: WorkerSettings = WorkerSettings()
    security: SecuritySettings = SecuritySettings()
    triggers: TriggerSettings = TriggerSettings()

    # Flat aliases for the two settings users set most (BEND_DATABASE_URL, BEND_KAFKA_BOOTSTRAP).
    database_url: str | None = None
    kafka_bootstrap: str | None = None

    def model_post_init(self, __context: object) -> None:
        """Let the flat aliases win over the nested defaults."""
        if self.database_url:
            self.database.url = self.database_url
        if self.kafka_bootstrap:
            self.kafka.bootstrap = self.kafka_bootstrap


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()

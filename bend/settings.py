"""Typed configuration: one `Settings` read from `BEND_*` variables, with local defaults."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, Field, SecretStr, model_validator
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
    # Each topic's min.insync.replicas: with acks=all (every Bend producer) a write succeeds
    # once this many replicas have it, so one broker of three may be lost without losing a
    # write or stopping them. At most replication_factor.
    min_insync_replicas: int = Field(default=1, ge=1)
    # How long a produce (the API's, the CLI's, triggers') may wait for its acks before it
    # fails with a 503: longer than losing a partition leader stalls writes (the 3-broker test
    # measures 9-14 s with Kafka's defaults), so a broker loss delays a request, not fails it.
    produce_timeout_s: float = Field(default=30.0, gt=0)
    # retention.ms of the run log (`<prefix>.run-events`): -1 keeps it forever. With a finite
    # retention, run the archiver (`bend archive run`, part of `bend serve`) so replay, fork and
    # rebuilds still see what Kafka has deleted; the commands topic keeps 7 days regardless.
    run_log_retention_ms: int = Field(default=-1, ge=-1)
    # How every client (Faust, aiokafka, confluent-kafka) connects; bend.kafka.clients turns
    # these into each one's config. SSL and SASL_SSL verify the brokers against `ssl_cafile`
    # (the system's CAs if unset) and present `ssl_certfile`/`ssl_keyfile` (PEM) if the
    # brokers ask for a client certificate; SASL_* log in as `sasl_username`.
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None

    @model_validator(mode="after")
    def _insync_within_replicas(self) -> KafkaSettings:
        if self.min_insync_replicas > self.replication_factor:
            raise ValueError(
                f"min_insync_replicas ({self.min_insync_replicas}) exceeds replication_factor "
                f"({self.replication_factor}): no write could succeed; lower "
                "BEND_KAFKA__MIN_INSYNC_REPLICAS or raise BEND_KAFKA__REPLICATION_FACTOR")
        return self

    @property
    def uses_ssl(self) -> bool:
        """Whether connections are TLS (SSL or SASL_SSL)."""
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        """Whether clients log in with SASL (SASL_PLAINTEXT or SASL_SSL)."""
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @model_validator(mode="after")
    def _security_complete(self) -> KafkaSettings:
        protocol = f"BEND_KAFKA__SECURITY_PROTOCOL is {self.security_protocol}"
        files = {"ssl_cafile": self.ssl_cafile, "ssl_certfile": self.ssl_certfile,
                 "ssl_keyfile": self.ssl_keyfile}
        given = [name for name, path in files.items() if path is not None]
        if given and not self.uses_ssl:
            raise ValueError(
                f"{', '.join(given)} set but {protocol}: TLS files are used only with SSL or "
                "SASL_SSL; set BEND_KAFKA__SECURITY_PROTOCOL=SASL_SSL (or SSL), or unset them")
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError(
                "a client certificate needs both BEND_KAFKA__SSL_CERTFILE and "
                "BEND_KAFKA__SSL_KEYFILE (PEM); set the missing one or unset both")
        for name in given:
            path = files[name]
            if path is not None and not path.is_file():
                raise ValueError(f"BEND_KAFKA__{name.upper()}={path}: no such file; mount it "
                                 "there or point the setting at it")
        login = [n for n, v in (("sasl_username", self.sasl_username),
                                ("sasl_password", self.sasl_password)) if v]
        if self.uses_sasl and len(login) < 2:
            raise ValueError(
                f"{protocol} but BEND_KAFKA__SASL_USERNAME and BEND_KAFKA__SASL_PASSWORD are "
                "not both set: set the user's name and password (Strimzi keeps the password in "
                "the KafkaUser's secret, key `password`)")
        if login and not self.uses_sasl:
            raise ValueError(
                f"{' and '.join(login)} set but {protocol}: a login is sent only with "
                "SASL_SSL or SASL_PLAINTEXT; set BEND_KAFKA__SECURITY_PROTOCOL=SASL_SSL")
        return self


class DatabaseSettings(BaseModel):
    """Postgres for projections; `url` unset means the embedded Postgres of `bend dev up`."""

    url: str | None = None
    schema_name: str = "bend"  # the read models' schema (a rebuild fills another, then swaps)
    min_pool: int = 1
    max_pool: int = 10


class ArchiveSettings(BaseModel):
    """The archive of the logs Kafka expires: Avro segment files under `dir` (unset: the
    local state dir's `archive/`), read with the log by replay, fork and rebuilds."""

    dir: Path | None = None
    # Topic kinds archived: the run log, and the commands and dead letters the read models
    # project (both expire: 7 and 30 days).
    topics: tuple[str, ...] = ("runs", "commands", "dead_letters")
    segment_records: int = Field(default=10_000, ge=1)  # a segment file holds at most this many
    flush_after_s: float = Field(default=30.0, gt=0)  # and is written once its oldest is this old


class NotifySettings(BaseModel):
    """Notifications (the notifier, streams/notifications/): webhook retries and the SMTP
    server e-mails go through."""

    webhook_attempts: int = Field(default=5, ge=1, le=20)  # tries of one delivery
    webhook_backoff_s: float = Field(default=1.0, gt=0)  # first wait between tries, doubling
    webhook_max_backoff_s: float = Field(default=60.0, gt=0)
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_from: str = "bend@localhost"
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_s: float = Field(default=10.0, gt=0)
    smtp_attempts: int = Field(default=3, ge=1, le=20)


class DevSettings(BaseModel):
    """The local stack started by `bend dev up` (no Docker)."""

    state_dir: Path = PROJECT_ROOT / ".bend"
    kafka_version: str = "3.9.2"
    kafka_port: int = 19092
    kafka_controller_port: int = 19093
    kafka_heap: str = "512m"
    postgres_port: int = 55432
    postgres_user: str = "bend"
    postgres_password: str = "bend"  # noqa: S105 - the embedded local database's
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
    ui_session_ttl_s: int = Field(default=28_800, ge=60)  # a web UI sign-in lasts this long
    # Readiness fails when the read models are this many records behind the log. Unset (the
    # default): the lag is reported but never fails it, so a projector backlog does not take
    # every API replica out of its load balancer (commands are still accepted and kept).
    ready_max_projection_lag: int | None = Field(default=None, ge=0)
    # POST /api/workflows/{id}/execute/bulk: at most this many runs a request (the request body
    # allows 1000), this many bytes of commands (each run carries its pinned definition and input)
    # and this many records produced at once; over a limit the request is refused with 413.
    bulk_max_runs: int = Field(default=1000, ge=1, le=1000)
    bulk_max_bytes: int = Field(default=16 * 1_048_576, ge=1)
    bulk_produce_concurrency: int = Field(default=100, ge=1)
    # A projection rebuild records its progress in Postgres this often; one whose progress is
    # older than `rebuild_abandoned_after_s` is reported `abandoned` (its process died).
    rebuild_heartbeat_s: float = Field(default=1.0, gt=0)
    rebuild_abandoned_after_s: float = Field(default=30.0, gt=0)


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
    # A worker idle while a partition it holds has records unread and its committed offset has
    # not moved for this long is stalled there (a Faust rebalance bug): it re-reads the partition
    # from the committed offset (streams/stall.py). Checked every `stall_check_s`; 0 turns it off.
    partition_stall_after_s: float = Field(default=20.0, gt=0)
    stall_check_s: float = Field(default=5.0, ge=0)
    # Log where records spend their time (streams/hops.py) every this many seconds; 0: off.
    hop_profile_s: float = Field(default=0.0, ge=0)
    # Orchestrator recovery (streams/snapshots.py): each owned partition's open runs are
    # snapshotted to the run-states topic every `snapshot_interval_s` (0: no snapshots, a new
    # owner folds the whole run log), leaving out the last `snapshot_lag_s` of the log.
    snapshot_interval_s: float = Field(default=1.0, ge=0)
    snapshot_lag_s: float = Field(default=2.0, ge=0)
    snapshot_max_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    # Finished run ids each partition remembers in memory (their commands are refused as for a
    # finished run); older ones are known from run-states tombstones for FINISHED_RUNS_KEPT_MS.
    finished_runs_kept: int = Field(default=20_000, ge=1)


class TriggerSettings(BaseModel):
    """The `triggers` worker: how often schedules are checked, and a clock offset for tests."""

    tick_s: float = Field(default=0.5, gt=0)
    clock_offset_s: float = 0.0  # added to the wall clock; tests simulate an outage with it
    # Record keys each Kafka trigger remembers as fired; older ones are refused by run id.
    kafka_fired_window: int = Field(default=10_000, ge=1)


class LlmPrice(BaseModel):
    """A model's price in US dollars per million tokens, for `bend_llm_cost_usd_total`."""

    input_per_mtok: float = Field(default=0.0, ge=0)
    output_per_mtok: float = Field(default=0.0, ge=0)


# List prices of common models (USD per million prompt/completion tokens); a model is priced by
# its longest matching prefix (`gpt-4o-2024-08-06` as `gpt-4o`), an unknown one at 0.
DEFAULT_LLM_PRICES: dict[str, LlmPrice] = {
    name: LlmPrice(input_per_mtok=i, output_per_mtok=o) for name, i, o in (
        ("gpt-4o", 2.50, 10.00), ("gpt-4o-mini", 0.15, 0.60), ("gpt-4.1", 2.00, 8.00),
        ("gpt-4.1-mini", 0.40, 1.60), ("gpt-4.1-nano", 0.10, 0.40), ("o1", 15.00, 60.00),
        ("o3", 2.00, 8.00), ("o3-mini", 1.10, 4.40), ("o4-mini", 1.10, 4.40),
        ("gpt-3.5-turbo", 0.50, 1.50), ("claude-3-5-sonnet", 3.00, 15.00),
        ("claude-3-7-sonnet", 3.00, 15.00), ("claude-sonnet-4", 3.00, 15.00),
        ("claude-3-5-haiku", 0.80, 4.00), ("claude-3-haiku", 0.25, 1.25),
        ("claude-opus-4", 15.00, 75.00), ("claude-3-opus", 15.00, 75.00),
        ("gemini-1.5-pro", 1.25, 5.00), ("gemini-1.5-flash", 0.075, 0.30),
        ("gemini-2.0-flash", 0.10, 0.40), ("mistral-large", 2.00, 6.00),
    )
}


class LlmSettings(BaseModel):
    """How executors talk to models: which API a model speaks when its endpoint does not say.

    `providers` maps a model name prefix to its API (`BEND_LLM__PROVIDERS='{"claude-":
    "anthropic"}'`); the longest matching prefix wins, and a model matching none speaks OpenAI.
    """

    providers: dict[str, Literal["openai", "anthropic"]] = Field(default_factory=dict)
    anthropic_version: str = "2023-06-01"  # the `anthropic-version` header
    anthropic_max_tokens: int = Field(default=4096, ge=1)  # Messages API's required max_tokens
    # Agent steps ask the model to stream and send its text, as it comes, to the agent-tokens
    # side channel (what the run page shows); off: one whole answer per call.
    stream_tokens: bool = True

    def provider_of(self, model: str, declared: str | None = None) -> str:
        """The API `model` speaks: the endpoint's `declared` one, else by prefix, else openai."""
        if declared:
            return declared
        matches = [prefix for prefix in self.providers if model.startswith(prefix)]
        return self.providers[max(matches, key=len)] if matches else "openai"


class OpsSettings(BaseModel):
    """Each process's ops server: /metrics, /livez, /readyz (`BEND_OPS__HOST`, `BEND_OPS__PORT`).

    Port 0 (the default) picks a free port and logs it (`ops_listening`), so several processes
    on one machine never clash; a container sets a fixed one (and host 0.0.0.0).
    """

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    check_timeout_s: float = Field(default=2.0, gt=0)  # each readiness check, run side by side
    lag_interval_s: float = Field(default=5.0, gt=0)  # how often consumer lag is measured
    stall_after_s: float = Field(default=30.0, gt=0)  # /livez fails if the loop stalled this long
    # Overrides and additions to DEFAULT_LLM_PRICES:
    # BEND_OPS__LLM_PRICES='{"my-model": {"input_per_mtok": 1, "output_per_mtok": 2}}'
    llm_prices: dict[str, LlmPrice] = Field(default_factory=dict)

    def prices(self) -> dict[str, LlmPrice]:
        """The price table in force: the defaults, then these settings' entries."""
        return {**DEFAULT_LLM_PRICES, **self.llm_prices}


class TracingSettings(BaseModel):
    """OpenTelemetry traces (`BEND_TRACING__OTLP_ENDPOINT=http://collector:4318`); off when unset.

    Off, no span is made and no `traceparent` header is written (see bend.tracing).
    """

    otlp_endpoint: str | None = None  # OTLP/HTTP base URL; /v1/traces is appended if missing
    otlp_headers: dict[str, str] = Field(default_factory=dict)  # e.g. an API key of a vendor
    service_name: str = "bend"  # each process reports `<service_name>-<role>`
    sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)  # of runs (the same in every process)
    export_delay_ms: int = Field(default=5000, ge=1)  # how long spans wait to go out in a batch
    export_timeout_s: float = Field(default=10.0, gt=0)


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
    # Where the buckets live: postgres (shared by every API replica) or memory (per process;
    # N replicas then allow N times the rates).
    rate_limit_store: Literal["postgres", "memory"] = "postgres"
    body_limit_bytes: int = Field(default=1_048_576, ge=1)
    webhook_tolerance_s: int = Field(default=300, ge=1)


class SecretsSettings(BaseModel):
    """How executors find the secrets steps name (`BEND_SECRETS__CACHE_S`).

    Secrets come from the encrypted store (`PUT /api/secrets/{name}`) of the run's project. A
    name the store lacks falls back to `BEND_SECRET_<NAME>`, but only for runs of the projects
    in `env_projects` (default: the installation's own, `BEND_PROJECT`; `*`: every project).
    """

    cache_s: float = Field(default=30.0, ge=0)  # a project's secrets are re-read this often
    env_fallback: bool = True
    env_projects: list[str] = Field(default_factory=list)  # empty: [BEND_PROJECT]
    # Hosts each BEND_SECRET_<NAME> may be sent to, by lower-case name (as the store's
    # `allowed_hosts`); a name not listed may be sent to any host its steps name.
    env_allowed_hosts: dict[str, list[str]] = Field(default_factory=dict)


class EgressSettings(BaseModel):
    """Where executors and pollers may connect (`BEND_EGRESS__ALLOWED_NETWORKS`).

    Loopback, private, link-local (cloud metadata included), shared, multicast and reserved
    addresses are refused unless a network here holds them; the address checked is the one
    connected to, after DNS, so a name that resolves to such an address is refused too.
    """

    allow_private: bool = False  # true: no address is refused (a trusted, closed network)
    allowed_networks: list[str] = Field(default_factory=list)  # e.g. ["127.0.0.0/8", "10.1.0.0/16"]


class McpSettings(BaseModel):
    """MCP servers agents take tools from (`BEND_MCP__TIMEOUT_S`, `BEND_MCP__ALLOW_STDIO`)."""

    timeout_s: float = Field(default=30.0, gt=0)  # connect and list tools; each tool call
    # Run the `command` MCP servers definitions name, on the executor's machine: local
    # development only (`bend serve` and `bend dev` allow it); production executors refuse.
    allow_stdio: bool = False
    cache_s: float = Field(default=30.0, ge=0)  # how long executors keep a project's registry


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
    ops: OpsSettings = OpsSettings()
    tracing: TracingSettings = TracingSettings()
    secrets: SecretsSettings = SecretsSettings()
    egress: EgressSettings = EgressSettings()
    mcp: McpSettings = McpSettings()
    archive: ArchiveSettings = ArchiveSettings()
    notify: NotifySettings = NotifySettings()
    llm: LlmSettings = LlmSettings()

    # Flat aliases for the two settings users set most (BEND_DATABASE_URL, BEND_KAFKA_BOOTSTRAP).
    database_url: str | None = None
    kafka_bootstrap: str | None = None

    def database_dsn(self) -> str:
        """The Postgres URL clients use: BEND_DATABASE_URL if set, else the embedded one that
        `bend dev up` starts (same user, password, port and database as DevSettings)."""
        if self.database.url:
            return self.database.url
        dev = self.dev
        return (f"postgresql://{dev.postgres_user}:{dev.postgres_password}"
                f"@127.0.0.1:{dev.postgres_port}/{dev.postgres_db}")

    def archive_dir(self) -> Path:
        """Where the archive's segment files live: BEND_ARCHIVE__DIR, else the state dir's."""
        return self.archive.dir or self.dev.state_dir / "archive"

    def model_post_init(self, __context: object) -> None:
        """Let the flat aliases win over the nested defaults."""
        if self.database_url:
            self.database.url = self.database_url
        if self.kafka_bootstrap:
            self.kafka.bootstrap = self.kafka_bootstrap


def redacted_url(url: str) -> str:
    """A URL with its password masked, for messages and logs."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()

"""Settings every service shares. Each service's own Settings class inherits
these and adds its own; all of them read the environment (pydantic-settings).
"""

from typing import Literal, Self

from pydantic import Field, RedisDsn, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from supportdesk_contracts.topics import Topics

KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
KafkaSaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
# http/json is not offered by the Python SDK.
OtlpProtocol = Literal["http/protobuf", "grpc"]


class ServiceSettings(BaseSettings):
    # env_ignore_empty: `NAME=` (an env file's way of saying "default") means
    # the default, not an empty string that fails to parse as a bool or number.
    model_config = SettingsConfigDict(
        env_file=None, extra="ignore", frozen=True, populate_by_name=True, env_ignore_empty=True
    )

    environment: Literal["development", "test", "production"] = "development"
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_topic_prefix: str = "supportdesk"
    kafka_partitions: int = Field(default=6, ge=1, description="Partitions of each topic created at start-up.")
    kafka_replication_factor: int = Field(default=1, ge=1)
    # The default of 500 ms makes every hop wait when the topic is idle; one hop
    # costs ~2 ms on the local broker with 5 ms.
    kafka_fetch_max_wait_ms: int = Field(default=5, ge=0)
    # How long a dead consumer keeps its partitions before the group rebalances.
    # Default 10 s; 6 s halves failover while leaving room for a GC or CPU stall
    # (heartbeats every 2 s) on a loaded two-core host.
    kafka_session_timeout_ms: int = Field(default=6000, ge=1000)
    kafka_heartbeat_interval_ms: int = Field(default=2000, ge=100)
    kafka_create_topics: bool = Field(
        default=True,
        description="Create missing topics at start-up; when false, wait for them (made by a Job or Strimzi).",
    )
    kafka_retention_ms: int = Field(
        default=7 * 24 * 3600 * 1000, ge=60_000, description="retention.ms of the topics this service creates."
    )
    kafka_deadletter_retention_ms: int = Field(
        default=14 * 24 * 3600 * 1000, ge=60_000, description="retention.ms of the dead-letter topic: time to look."
    )
    kafka_min_insync_replicas: int | None = Field(
        default=None, ge=1, description="min.insync.replicas of created topics; the broker's default when unset."
    )
    kafka_provision_timeout_seconds: float = Field(
        default=180, gt=0, description="How long start-up waits for Kafka and the topics, retrying with backoff."
    )
    # Every managed Kafka needs these; they reach the producer, the consumers
    # and the admin client alike.
    kafka_security_protocol: KafkaSecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: KafkaSaslMechanism = "PLAIN"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = Field(default=None, description="CA bundle; the system's when unset.")
    kafka_ssl_certfile: str | None = Field(default=None, description="Client certificate (mutual TLS).")
    kafka_ssl_keyfile: str | None = None
    kafka_ssl_key_password: SecretStr | None = None

    redis_url: RedisDsn = RedisDsn("redis://127.0.0.1:6379/0")
    redis_key_prefix: str = "sd"

    event_retry_attempts: int = Field(
        default=8,
        ge=1,
        description="Attempts at an event while a dependency is unavailable (Redis, Kafka, Qdrant, the network);"
        " then it is dead-lettered with the count. With the backoff below, 8 attempts wait 45-90 s in all.",
    )
    event_retry_initial_seconds: float = Field(default=1, gt=0, description="Backoff before the second attempt.")
    event_retry_max_seconds: float = Field(default=30, gt=0, description="Longest backoff between attempts.")

    shutdown_drain_seconds: float = Field(
        default=30,
        gt=0,
        description="On SIGTERM, how long in-flight work (a turn, an LLM call, a REST wait) may take to finish.",
    )

    # The standard OpenTelemetry variables that decide whether traces are
    # exported (telemetry.py); the SDK reads the rest itself.
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None, description="OTLP collector, e.g. http://otel-collector:4318; no traces without one."
    )
    otel_exporter_otlp_traces_endpoint: str | None = None
    otel_exporter_otlp_protocol: OtlpProtocol = "http/protobuf"
    otel_exporter_otlp_traces_protocol: OtlpProtocol | None = None
    otel_sdk_disabled: bool = False
    otel_traces_exporter: Literal["otlp", "none"] = Field(
        default="otlp", description="`none` turns tracing off; OTLP is the only exporter offered."
    )

    @property
    def tracing_wanted(self) -> bool:
        endpoint = self.otel_exporter_otlp_traces_endpoint or self.otel_exporter_otlp_endpoint
        return bool(endpoint) and not self.otel_sdk_disabled and self.otel_traces_exporter == "otlp"

    @property
    def otlp_traces_protocol(self) -> OtlpProtocol:
        return self.otel_exporter_otlp_traces_protocol or self.otel_exporter_otlp_protocol

    @property
    def topics(self) -> Topics:
        return Topics(prefix=self.kafka_topic_prefix)

    @model_validator(mode="after")
    def _check_kafka_credentials(self) -> Self:
        if self.kafka_security_protocol.startswith("SASL") and not (
            self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol}"
                " needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
            )
        return self


class WorkerSettings(ServiceSettings):
    """What every Kafka worker shares: its consumer group and the small HTTP
    port serving its health and metrics. Each worker names its own variables
    (SESSION_OPS_PORT, AGENT_CONSUMER_GROUP, ...) by overriding the fields."""

    ops_host: str = "127.0.0.1"
    ops_port: int
    consumer_group: str

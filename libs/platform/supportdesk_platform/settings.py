"""Settings every service shares. Each service's own Settings class inherits
these and adds its own; all of them read the environment (pydantic-settings).
"""

from typing import Literal, Self

from pydantic import Field, RedisDsn, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from supportdesk_contracts.topics import Topics

# A fixed key so that several local processes can read each other's encrypted
# session state without configuration. Refused outside development.
DEVELOPMENT_ENCRYPTION_KEY = "c3VwcG9ydGRlc2stZGV2ZWxvcG1lbnQta2V5LTAwMDA="


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True, populate_by_name=True)

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

    redis_url: RedisDsn = RedisDsn("redis://127.0.0.1:6379/0")
    redis_key_prefix: str = "sd"

    shutdown_drain_seconds: float = Field(
        default=30,
        gt=0,
        description="On SIGTERM, how long in-flight work (a turn, an LLM call, a REST wait) may take to finish.",
    )

    session_timeout_minutes: float = Field(default=30, gt=0)
    # Comma-separated Fernet keys: the first encrypts, all decrypt (rotation).
    session_encryption_keys: SecretStr = SecretStr("")

    @property
    def topics(self) -> Topics:
        return Topics(prefix=self.kafka_topic_prefix)

    @property
    def session_ttl_seconds(self) -> int:
        return max(1, int(self.session_timeout_minutes * 60))

    @property
    def encryption_keys(self) -> list[str]:
        raw = self.session_encryption_keys.get_secret_value()
        keys = [k.strip() for k in raw.split(",") if k.strip()]
        return keys or [DEVELOPMENT_ENCRYPTION_KEY]

    @model_validator(mode="after")
    def _refuse_development_secrets(self) -> Self:
        if self.environment == "production" and DEVELOPMENT_ENCRYPTION_KEY in self.encryption_keys:
            raise ValueError("SESSION_ENCRYPTION_KEYS must be set to real keys in production")
        return self


class WorkerSettings(ServiceSettings):
    """What every Kafka worker shares: its consumer group and the small HTTP
    port serving its health and metrics. Each worker names its own variables
    (SESSION_OPS_PORT, AGENT_CONSUMER_GROUP, ...) by overriding the fields."""

    ops_host: str = "127.0.0.1"
    ops_port: int
    consumer_group: str

from typing import Self

from pydantic import AnyHttpUrl, Field, SecretStr, model_validator

from supportdesk_platform.secrets import GENERATE_TOKEN, weakness
from supportdesk_platform.settings import WorkerSettings
from supportdesk_sessions.settings import SessionStateSettings


class SessionWorkerSettings(SessionStateSettings, WorkerSettings):
    ops_port: int = Field(default=8101, alias="SESSION_OPS_PORT")
    consumer_group: str = Field(default="supportdesk-session", alias="SESSION_CONSUMER_GROUP")
    concurrency: int = Field(
        default=64,
        ge=1,
        le=1024,
        alias="SESSION_CONCURRENCY",
        description="Events one session worker takes at once (handled concurrently across sessions, each session's"
        " in order; events queued behind a busy session count too).",
    )
    session_reap_seconds: float = Field(
        default=10, gt=0, description="How often expired sessions are looked for, logged and announced."
    )
    handoff_claim_timeout_seconds: float = Field(
        default=300,
        gt=0,
        description="A session escalated and not claimed by a human within this time goes back to the bot, and the"
        " user is told.",
    )
    handoff_sweep_seconds: float = Field(default=10, gt=0, description="How often unclaimed handoffs are looked for.")
    history_turns: int = Field(
        default=12, ge=0, description="Earlier messages handed to the agent as they were (0: no memory at all)."
    )
    memory_token_budget: int = Field(
        default=1500,
        ge=1,
        description="Tokens (estimated, 4 characters each) of earlier messages handed to the agent as they were;"
        " older ones are condensed into the session's summary.",
    )
    escalation_webhook_url: AnyHttpUrl | None = Field(
        default=None, description="POSTed a signed JSON body for every escalation (webhook.py)."
    )
    escalation_webhook_secret: SecretStr | None = Field(
        default=None, description="Signs the webhook body (HMAC-SHA256); required with the URL."
    )
    escalation_webhook_attempts: int = Field(default=5, ge=1, le=20)
    escalation_webhook_backoff_seconds: float = Field(
        default=1.0, gt=0, description="First retry delay; doubles each time (with jitter)."
    )

    @model_validator(mode="after")
    def _webhook_needs_a_secret(self) -> Self:
        if self.escalation_webhook_url is None:
            return self
        if self.escalation_webhook_secret is None:
            raise ValueError(
                f"ESCALATION_WEBHOOK_URL needs ESCALATION_WEBHOOK_SECRET; generate one with: {GENERATE_TOKEN}"
            )
        problem = weakness(self.escalation_webhook_secret.get_secret_value())
        if problem is not None and self.environment != "development":
            raise ValueError(f"ESCALATION_WEBHOOK_SECRET {problem}; generate one with: {GENERATE_TOKEN}")
        return self

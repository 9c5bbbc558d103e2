from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator

from supportdesk_agent.answerer import RetrievalOptions
from supportdesk_knowledge.settings import KnowledgeSettings
from supportdesk_platform.settings import WorkerSettings
from supportdesk_sessions.settings import SessionStateSettings

DEFAULT_ESCALATION_KEYWORDS: dict[str, float] = {
    "emergency": 1.0,
    "lawsuit": 1.0,
    "lawyer": 1.0,
    "attorney": 1.0,
    "sue": 1.0,
    "fraud": 1.0,
    "legal": 0.9,
    "furious": 0.8,
    "scam": 0.8,
    "court": 0.7,
    "urgent": 0.6,
    "angry": 0.6,
    "unacceptable": 0.6,
    "complaint": 0.5,
    "terrible": 0.4,
    "worst": 0.4,
    "asap": 0.3,
    "immediately": 0.3,
}


class AgentSettings(SessionStateSettings, WorkerSettings):
    """Session keys too: the agent reads the passages of the files a user
    attached to their session from the session's encrypted state."""

    ops_port: int = Field(default=8102, alias="AGENT_OPS_PORT")
    consumer_group: str = Field(default="supportdesk-agent", alias="AGENT_CONSUMER_GROUP")
    concurrency: int = Field(
        default=8,
        ge=1,
        le=256,
        alias="AGENT_CONCURRENCY",
        description="Turns one agent process answers at once: different sessions concurrently, each session's turns"
        " in order (one consumer; offsets committed as a watermark).",
    )
    double_text: Literal["queue", "interrupt"] = Field(
        default="queue",
        alias="AGENT_DOUBLE_TEXT",
        description="A user message that arrives while the previous one is being answered: queue (answer both, in"
        " order) or interrupt (cut the running answer short, mark it interrupted, answer the newest).",
    )

    answerer: Literal["knowledge", "echo"] = Field(
        default="knowledge",
        alias="AGENT_ANSWERER",
        description="knowledge: answers from the knowledge base (and the LLM when configured); echo: says each"
        " message back, for measuring the transport alone (make bench). Never echo in production.",
    )
    delta_window_ms: float = Field(
        default=20,
        ge=0,
        alias="AGENT_DELTA_WINDOW_MS",
        description="A reply's pieces after the first are sent together, one delta per this many milliseconds"
        " (0: without waiting; pieces that come at once still go together). Fewer, larger messages: every one"
        " costs each hop to the socket.",
    )
    delta_max_chars: int = Field(
        default=400, ge=1, alias="AGENT_DELTA_MAX_CHARS", description="A delta is sent once this many characters wait."
    )

    openai_base_url: str | None = None
    openai_api_key: SecretStr | None = None
    llm_model: str = "gpt-4o-mini"
    llm_timeout_seconds: float = Field(default=30, gt=0)
    llm_max_tokens: int = Field(default=400, ge=16)
    llm_temperature: float = Field(default=0.2, ge=0, le=2)
    llm_max_retries: int = Field(
        default=2, ge=0, le=10, description="Retries of a call refused with 429, 5xx or a connection error (backoff)."
    )
    llm_breaker_failures: int = Field(
        default=5, ge=1, description="Failed calls in a row that open the circuit breaker (answers from passages)."
    )
    llm_breaker_cooldown_seconds: float = Field(
        default=30, gt=0, description="How long the breaker stays open before one call probes the endpoint."
    )

    llm_budget_tokens: int = Field(
        default=20_000,
        ge=0,
        description="LLM tokens (estimated) one session may spend per budget period; then it is answered from the"
        " passages. 0: no budget.",
    )
    llm_budget_period_seconds: float = Field(default=3600, gt=0)

    llm_rewrite_followups: bool = Field(
        default=True,
        description="With an LLM, rewrite a follow-up into a standalone question before searching (one short call,"
        " only for messages that read as follow-ups).",
    )
    llm_rewrite_timeout_seconds: float = Field(
        default=3, gt=0, description="Then the follow-up is read by its words instead."
    )
    memory_summary_tokens: int = Field(
        default=300,
        ge=20,
        description="Tokens (estimated) the condensed summary of a session's older turns may take.",
    )

    rag_search_k: int = Field(default=4, ge=1, le=20)
    rag_similarity_threshold: float = Field(
        default=0.475,
        ge=0,
        le=1,
        description="Passages less similar to the question than this are not relevant; with none left the agent "
        "says it does not know. Calibrated on the eval set (docs/quality.md).",
    )

    rag_relative_margin: float = Field(
        default=0.15, ge=0, le=1, description="Passages further than this below the best one are not cited."
    )

    escalation_enabled: bool = True
    escalation_keywords: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_ESCALATION_KEYWORDS))
    escalation_keyword_threshold: float = Field(default=0.9, gt=0, description="Summed keyword weight that escalates.")
    escalation_on_no_answer: bool = Field(default=True, description="Escalate when the knowledge base has no answer.")

    knowledge: KnowledgeSettings = Field(default_factory=KnowledgeSettings)

    @property
    def retrieval(self) -> RetrievalOptions:
        return RetrievalOptions(self.rag_search_k, self.rag_similarity_threshold, self.rag_relative_margin)

    @property
    def llm_configured(self) -> bool:
        return bool(self.openai_base_url or self.openai_api_key)

    @model_validator(mode="after")
    def _no_echo_in_production(self) -> Self:
        # The echo answerer skips escalation and the knowledge base: one
        # stray variable from a benchmark must not put it before users.
        if self.answerer == "echo" and self.environment == "production":
            raise ValueError("AGENT_ANSWERER=echo is for benchmarks; it is refused with ENVIRONMENT=production")
        return self

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class AgentMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.answers = Counter(
            "supportdesk_agent_answers",
            "Turns answered, by outcome (answered, no_answer, handoff, interrupted).",
            ["outcome"],
            registry=registry,
        )
        for outcome in ("answered", "no_answer", "handoff", "interrupted", "reused"):
            self.answers.labels(outcome)  # series from the start, so increase() sees a first one
        self.escalations = Counter("supportdesk_agent_escalations", "Turns that escalated.", registry=registry)
        self.over_budget = Counter(
            "supportdesk_agent_llm_over_budget",
            "Turns answered from the passages because the session spent its LLM budget.",
            registry=registry,
        )
        self.llm_calls = Counter(
            "supportdesk_agent_llm_calls",
            "Calls to the LLM endpoint by outcome: ok, failed (after the client's retries), skipped (breaker open).",
            ["outcome"],
            registry=registry,
        )
        for outcome in ("ok", "failed", "skipped", "abandoned"):
            self.llm_calls.labels(outcome)
        self.llm_seconds = Histogram(
            "supportdesk_agent_llm_seconds",
            "Duration of one LLM call, retries included, until its last token or its failure.",
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60),
            registry=registry,
        )
        self.llm_tokens = Counter(
            "supportdesk_agent_llm_tokens",
            "LLM tokens by kind (prompt, completion): as the endpoint reports them, else estimated (4 chars a token).",
            ["kind"],
            registry=registry,
        )
        self.llm_first_token_seconds = Histogram(
            "supportdesk_agent_llm_first_token_seconds",
            "From calling the LLM to its first token (time to first token), retries included.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )
        self.llm_breaker_open = Gauge(
            "supportdesk_agent_llm_breaker_open", "1 while the LLM circuit breaker is open.", registry=registry
        )
        self.retrieval_seconds = Histogram(
            "supportdesk_agent_retrieval_seconds",
            "One knowledge search, by stage: embed (the query's embedding), search (the vector index).",
            ["stage"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=registry,
        )
        self.retrieval_top_score = Histogram(
            "supportdesk_agent_retrieval_top_score",
            "Cosine similarity of the best passage of each turn that found one: a falling median says the"
            " knowledge base no longer covers what users ask.",
            buckets=(0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.9, 1.0),
            registry=registry,
        )
        self.answer_seconds = Histogram(
            "supportdesk_agent_answer_seconds",
            "Retrieval plus generation time of one turn.",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )

    def retrieval_stage(self, stage: str, seconds: float) -> None:
        self.retrieval_seconds.labels(stage).observe(seconds)

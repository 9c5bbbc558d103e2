from prometheus_client import CollectorRegistry, Counter, Histogram


class AgentMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.answers = Counter(
            "supportdesk_agent_answers",
            "Turns answered, by outcome (answered, no_answer, handoff).",
            ["outcome"],
            registry=registry,
        )
        self.escalations = Counter("supportdesk_agent_escalations", "Turns that escalated.", registry=registry)
        self.over_budget = Counter(
            "supportdesk_agent_llm_over_budget",
            "Turns answered from the passages because the session spent its LLM budget.",
            registry=registry,
        )
        self.answer_seconds = Histogram(
            "supportdesk_agent_answer_seconds",
            "Retrieval plus generation time of one turn.",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )

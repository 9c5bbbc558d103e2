"""Wiring of the agent worker: the one place its clients meet its handlers."""

from faststream.kafka import KafkaBroker
from openai import AsyncOpenAI
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from supportdesk_agent.breaker import CircuitBreaker
from supportdesk_agent.budget import LlmBudget
from supportdesk_agent.generators import ExtractiveGenerator, Generator, LlmGenerator
from supportdesk_agent.handlers import build_router
from supportdesk_agent.memory import Condenser, ExtractiveCondenser, LlmCondenser
from supportdesk_agent.metrics import AgentMetrics
from supportdesk_agent.rewriting import LlmRewriter
from supportdesk_agent.settings import AgentSettings
from supportdesk_knowledge.base import KnowledgeBase
from supportdesk_platform.kafka import TopicProvisioner
from supportdesk_platform.lifecycle import Component, Service
from supportdesk_platform.ops import Health, redis_check
from supportdesk_sessions.answers import FinishedAnswers
from supportdesk_sessions.attachments import SessionAttachments
from supportdesk_sessions.cipher import SessionCipher


def build_llm_client(settings: AgentSettings) -> AsyncOpenAI:
    return AsyncOpenAI(
        base_url=settings.openai_base_url,
        # Local OpenAI-compatible servers need no key, but the client insists on one.
        api_key=settings.openai_api_key.get_secret_value() if settings.openai_api_key else "not-needed",
        max_retries=settings.llm_max_retries,
        timeout=settings.llm_timeout_seconds,
    )


def build_condenser(settings: AgentSettings, llm: AsyncOpenAI | None, breaker: CircuitBreaker | None) -> Condenser:
    extractive = ExtractiveCondenser(settings.memory_summary_tokens)
    if llm is None:
        return extractive
    return LlmCondenser(
        llm,
        settings.llm_model,
        extractive,
        budget_tokens=settings.memory_summary_tokens,
        timeout_seconds=settings.llm_timeout_seconds,
        breaker=breaker,
    )


def build_generator(
    settings: AgentSettings, kb: KnowledgeBase, llm: AsyncOpenAI | None, metrics: AgentMetrics | None = None
) -> Generator:
    extractive = ExtractiveGenerator(kb.embedder)
    if llm is None:
        return extractive
    return LlmGenerator(
        llm,
        settings.llm_model,
        extractive,
        timeout_seconds=settings.llm_timeout_seconds,
        max_tokens=settings.llm_max_tokens,
        temperature=settings.llm_temperature,
        breaker=CircuitBreaker(settings.llm_breaker_failures, settings.llm_breaker_cooldown_seconds),
        metrics=metrics,
    )


def agent_component(
    settings: AgentSettings,
    knowledge: KnowledgeBase,
    registry: CollectorRegistry,
    llm: AsyncOpenAI | None = None,
    redis: Redis | None = None,
) -> Component:
    """The agent's subscriber and checks, for a process of its own or one it
    shares with ingest (Qdrant local mode: one process per folder). Answers
    through `llm` when given, extractively otherwise; with `redis`, each
    session's LLM use is capped (LLM_BUDGET_TOKENS), the files a user
    attached to their session are searched with the knowledge base, and a
    turn delivered again is answered from its kept answer."""
    metrics = AgentMetrics(registry)
    knowledge.timings = metrics.retrieval_stage
    generator = build_generator(settings, knowledge, llm, metrics)
    budget = None
    if llm is not None and redis is not None and settings.llm_budget_tokens > 0:
        budget = LlmBudget(
            redis, settings.redis_key_prefix, settings.llm_budget_tokens, settings.llm_budget_period_seconds
        )
    within_budget = ExtractiveGenerator(knowledge.embedder)
    breaker = generator.breaker if isinstance(generator, LlmGenerator) else None
    condenser = build_condenser(settings, llm, breaker)
    rewriter = None
    if llm is not None and settings.llm_rewrite_followups:
        rewriter = LlmRewriter(
            llm, settings.llm_model, timeout_seconds=settings.llm_rewrite_timeout_seconds, breaker=breaker
        )
    attachments, answers = None, None
    if redis is not None:
        cipher = SessionCipher(settings.encryption_keys)
        attachments = SessionAttachments(redis, cipher, settings.redis_key_prefix)
        answers = FinishedAnswers(redis, cipher, settings.redis_key_prefix)
    turns = build_router(
        settings,
        knowledge,
        generator,
        metrics,
        budget,
        within_budget,
        condenser,
        rewriter,
        attachments,
        answers,
        registry=registry,
    )

    async def finish_turns() -> None:
        # Before the broker stops: turns taken finish (and commit) or are left
        # to be redelivered to the group's next member.
        await turns.dispatcher.drain(settings.shutdown_drain_seconds)

    return Component(
        "agent",
        router=turns.router,
        on_drain=[finish_turns],
        checks={"qdrant": knowledge.index.ready, **({"redis": redis_check(redis)} if redis is not None else {})},
        details={
            "generator": lambda: {
                "mode": "echo" if settings.answerer == "echo" else "llm" if llm is not None else "extractive",
                "model": settings.llm_model if llm is not None else None,
            },
            "embedder": lambda: {
                "model_calls": knowledge.embedder.model_calls,
                "cache_hits": knowledge.embedder.cache_hits,
                "cache_misses": knowledge.embedder.cache_misses,
            },
            "turns": lambda: {
                "in_flight": turns.dispatcher.in_flight,
                "concurrency": settings.concurrency,
                "double_text": settings.double_text,
            },
        },
    )


async def build_worker(
    settings: AgentSettings,
    *,
    knowledge: KnowledgeBase | None = None,
    llm: AsyncOpenAI | None = None,
    redis: Redis | None = None,
    broker: KafkaBroker | None = None,
    provisioner: TopicProvisioner | None = None,
    health: Health | None = None,
) -> Service:
    """The agent worker; clients not passed in are created from `settings`
    (and then closed by the worker when it stops). The LLM client is created
    when OPENAI_BASE_URL or OPENAI_API_KEY is set."""
    kb = knowledge or await KnowledgeBase.open(settings.knowledge)
    own_llm = llm is None and settings.llm_configured
    client = build_llm_client(settings) if own_llm else llm
    # For the LLM budget and the users' attachments.
    own_redis = redis is None
    store = Redis.from_url(str(settings.redis_url)) if own_redis else redis
    health = health or Health("agent")
    component = agent_component(settings, kb, health.registry, client, store)
    if own_redis and store is not None:
        component.closers.append(store.aclose)
    if knowledge is None:
        component.closers.append(kb.close)
    if own_llm and client is not None:
        component.closers.append(client.close)
    return Service("agent", settings, health, [component], broker=broker, provisioner=provisioner)

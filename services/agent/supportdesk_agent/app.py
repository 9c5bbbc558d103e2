"""Wiring of the agent worker: the one place its clients are created."""

from openai import AsyncOpenAI

from supportdesk_agent.answering import ExtractiveGenerator, Generator, LlmGenerator
from supportdesk_agent.handlers import build_router
from supportdesk_agent.metrics import AgentMetrics
from supportdesk_agent.settings import AgentSettings
from supportdesk_knowledge.base import KnowledgeBase
from supportdesk_platform.kafka import build_broker
from supportdesk_platform.ops import Health
from supportdesk_platform.worker import Worker


def build_generator(settings: AgentSettings, kb: KnowledgeBase) -> Generator:
    extractive = ExtractiveGenerator(kb.embedder)
    if not settings.llm_configured:
        return extractive
    client = AsyncOpenAI(
        base_url=settings.openai_base_url,
        # Local OpenAI-compatible servers need no key, but the client insists on one.
        api_key=settings.openai_api_key.get_secret_value() if settings.openai_api_key else "not-needed",
        max_retries=1,
        timeout=settings.llm_timeout_seconds,
    )
    return LlmGenerator(
        client,
        settings.llm_model,
        extractive,
        settings.llm_timeout_seconds,
        settings.llm_max_tokens,
        settings.llm_temperature,
    )


async def build_worker(settings: AgentSettings, kb: KnowledgeBase | None = None) -> Worker:
    kb = kb or await KnowledgeBase.open(settings.knowledge)
    health = Health("agent")
    broker = build_broker(settings, "supportdesk-agent", health.registry)
    broker.include_router(build_router(settings, kb, build_generator(settings, kb), AgentMetrics(health.registry)))
    health.checks["qdrant"] = kb.index.ready
    health.details["generator"] = lambda: {
        "mode": "llm" if settings.llm_configured else "extractive",
        "model": settings.llm_model if settings.llm_configured else None,
    }
    worker = Worker("agent", settings, broker, health)
    worker.resources.push_async_callback(kb.close)
    return worker

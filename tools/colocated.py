"""The agent and ingest workers in one process, sharing one knowledge base.

Qdrant's embedded local mode admits one process per data folder, so on a
single host without a Qdrant server (`make run`) the two workers share this
process. The composition lives here, in the launcher: neither service knows
the other. With QDRANT_URL set, run them as separate processes instead.

    python tools/colocated.py
"""

import asyncio

from redis.asyncio import Redis

from supportdesk_agent.app import agent_component, build_llm_client
from supportdesk_agent.settings import AgentSettings
from supportdesk_ingest.app import ingest_component
from supportdesk_ingest.settings import IngestSettings
from supportdesk_knowledge.base import KnowledgeBase
from supportdesk_platform.lifecycle import Service, serve_worker
from supportdesk_platform.logs import configure_logging
from supportdesk_platform.ops import Health
from supportdesk_platform.telemetry import configure_tracing


async def build(agent: AgentSettings, ingest: IngestSettings, health: Health) -> Service:
    kb = await KnowledgeBase.open(agent.knowledge)
    redis = Redis.from_url(str(ingest.redis_url))
    llm = build_llm_client(agent) if agent.llm_configured else None
    components = [
        agent_component(agent, kb, health.registry, llm, redis),
        ingest_component(ingest, kb, redis, metrics=health.registry),
    ]
    components[-1].closers += [kb.close, redis.aclose] + ([llm.close] if llm is not None else [])
    # One broker for both: the agent's settings carry the shared Kafka ones.
    return Service("agent+ingest", agent, health, components)


async def run(agent: AgentSettings, ingest: IngestSettings) -> None:
    health = Health("agent+ingest")
    await serve_worker(agent, health, build(agent, ingest, health))


def main() -> None:
    agent, ingest = AgentSettings(), IngestSettings()
    configure_logging("agent+ingest", agent.log_level, agent.log_format)
    configure_tracing("agent", agent)
    asyncio.run(run(agent, ingest))


if __name__ == "__main__":
    main()

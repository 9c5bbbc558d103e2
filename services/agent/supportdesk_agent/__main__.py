import asyncio

from supportdesk_agent.app import build_worker
from supportdesk_agent.settings import AgentSettings
from supportdesk_platform.lifecycle import serve_worker
from supportdesk_platform.logs import configure_logging
from supportdesk_platform.ops import Health
from supportdesk_platform.telemetry import configure_tracing


async def run(settings: AgentSettings) -> None:
    health = Health("agent")
    await serve_worker(settings, health, build_worker(settings, health=health))


def main() -> None:
    settings = AgentSettings()
    configure_logging("agent", settings.log_level, settings.log_format)
    configure_tracing("agent", settings)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()

import asyncio

from supportdesk_platform.lifecycle import Service, serve_worker
from supportdesk_platform.logs import configure_logging
from supportdesk_platform.ops import Health
from supportdesk_platform.telemetry import configure_tracing
from supportdesk_session.app import build_worker
from supportdesk_session.settings import SessionWorkerSettings


async def run(settings: SessionWorkerSettings) -> None:
    health = Health("session")

    async def built() -> Service:
        return build_worker(settings, health=health)

    await serve_worker(settings, health, built())


def main() -> None:
    settings = SessionWorkerSettings()
    configure_logging("session", settings.log_level, settings.log_format)
    configure_tracing("session", settings)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()

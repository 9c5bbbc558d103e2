import asyncio

from supportdesk_ingest.app import build_worker
from supportdesk_ingest.settings import IngestSettings
from supportdesk_platform.lifecycle import serve_worker
from supportdesk_platform.logs import configure_logging
from supportdesk_platform.ops import Health
from supportdesk_platform.telemetry import configure_tracing


async def run(settings: IngestSettings) -> None:
    health = Health("ingest")
    await serve_worker(settings, health, build_worker(settings, health=health))


def main() -> None:
    settings = IngestSettings()
    configure_logging("ingest", settings.log_level, settings.log_format)
    configure_tracing("ingest", settings)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()

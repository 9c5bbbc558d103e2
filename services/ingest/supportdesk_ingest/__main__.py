import asyncio

from supportdesk_ingest.app import build_worker
from supportdesk_ingest.settings import IngestSettings
from supportdesk_platform.lifecycle import serve_worker
from supportdesk_platform.logs import configure_logging


async def run(settings: IngestSettings) -> None:
    await serve_worker(await build_worker(settings), settings)


def main() -> None:
    settings = IngestSettings()
    configure_logging("ingest", settings.log_level, settings.log_format)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()

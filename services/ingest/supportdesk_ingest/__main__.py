from supportdesk_ingest.app import build_worker
from supportdesk_ingest.settings import IngestSettings
from supportdesk_platform.logs import configure_logging
from supportdesk_platform.worker import run_until_stopped, serve


async def _run(settings: IngestSettings) -> None:
    await serve(await build_worker(settings), settings.ops_host, settings.ops_port)


def main() -> None:
    settings = IngestSettings()
    configure_logging("ingest", settings.log_level, settings.log_format)
    run_until_stopped(_run(settings))


if __name__ == "__main__":
    main()

import asyncio

from supportdesk_platform.lifecycle import serve_worker
from supportdesk_platform.logs import configure_logging
from supportdesk_session.app import build_worker
from supportdesk_session.settings import SessionWorkerSettings


def main() -> None:
    settings = SessionWorkerSettings()
    configure_logging("session", settings.log_level, settings.log_format)
    asyncio.run(serve_worker(build_worker(settings), settings))


if __name__ == "__main__":
    main()

from supportdesk_platform.logs import configure_logging
from supportdesk_platform.worker import run_until_stopped, serve
from supportdesk_session.app import build_worker
from supportdesk_session.settings import SessionWorkerSettings


def main() -> None:
    settings = SessionWorkerSettings()
    configure_logging("session", settings.log_level, settings.log_format)
    run_until_stopped(serve(build_worker(settings), settings.ops_host, settings.ops_port))


if __name__ == "__main__":
    main()

import argparse

from supportdesk_agent.app import build_worker
from supportdesk_agent.settings import AgentSettings
from supportdesk_knowledge.base import KnowledgeBase
from supportdesk_platform.logs import configure_logging
from supportdesk_platform.worker import Worker, run_until_stopped, serve


async def _build(settings: AgentSettings, with_ingest: bool) -> Worker:
    kb = await KnowledgeBase.open(settings.knowledge)
    worker = await build_worker(settings, kb)
    if with_ingest:
        # Qdrant local mode admits one process per data folder, so on a single
        # host the ingest worker shares this process and its knowledge base.
        from supportdesk_ingest.app import attach_to
        from supportdesk_ingest.settings import IngestSettings

        await attach_to(worker, IngestSettings(), kb)
    return worker


async def _run(with_ingest: bool) -> None:
    settings = AgentSettings()
    worker = await _build(settings, with_ingest)
    await serve(worker, settings.ops_host, settings.ops_port)


def main() -> None:
    parser = argparse.ArgumentParser(description="SupportDesk agent worker")
    parser.add_argument("--with-ingest", action="store_true", help="also run the ingest worker in this process")
    args = parser.parse_args()
    settings = AgentSettings()
    configure_logging("agent+ingest" if args.with_ingest else "agent", settings.log_level, settings.log_format)
    run_until_stopped(_run(args.with_ingest))


if __name__ == "__main__":
    main()

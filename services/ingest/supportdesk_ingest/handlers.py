"""Kafka subscriber of the ingest worker: the documents.uploads topic."""

from faststream.kafka import KafkaRouter
from prometheus_client import CollectorRegistry
from pydantic import TypeAdapter

from supportdesk_contracts.events import AttachmentUploaded, DocumentDeleted, DocumentEvent, DocumentUploaded
from supportdesk_ingest.indexing import AttachmentReader, Indexer
from supportdesk_ingest.settings import IngestSettings
from supportdesk_platform.kafka import DeadLetters, RetryPolicy, subscribe_events

_DOCUMENT = TypeAdapter[DocumentEvent](DocumentEvent)


def build_router(
    settings: IngestSettings,
    indexer: Indexer,
    reader: AttachmentReader,
    router: KafkaRouter | None = None,
    registry: CollectorRegistry | None = None,
) -> KafkaRouter:
    """Subscribes on `router` (a new one if not given: one whose publishers
    the indexer already holds); dead letters are counted in `registry`."""
    topics = settings.topics
    router = router or KafkaRouter()

    async def given_up(event: object, reason: str) -> None:
        # Never left `processing` (or `queued`) for good: the status says why.
        match event:
            case DocumentUploaded():
                await indexer.given_up(event, reason)
            case AttachmentUploaded():
                await reader.given_up(event, reason)

    dead_letters = DeadLetters(
        router.publisher(topics.dead_letters, title="ingest:deadletter"),
        "ingest",
        RetryPolicy.of(settings),
        given_up,
        registry,
    )

    async def dispatch(event: DocumentUploaded | DocumentDeleted | AttachmentUploaded) -> None:
        match event:
            case AttachmentUploaded():
                await reader.uploaded(event)
            case DocumentUploaded():
                await indexer.uploaded(event)
            case DocumentDeleted():
                await indexer.deleted(event)

    subscribe_events(
        router,
        settings,
        topic=topics.document_uploads,
        group_id=settings.consumer_group,
        title="ingest:uploads",
        adapter=_DOCUMENT,
        dead_letters=dead_letters,
        handler=dispatch,
    )
    return router

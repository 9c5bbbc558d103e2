"""Kafka subscriber of the ingest worker: the documents.uploads topic."""

from faststream import AckPolicy
from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage
from pydantic import TypeAdapter

from supportdesk_contracts.events import DocumentDeleted, DocumentEvent, DocumentUploaded
from supportdesk_ingest.indexing import Indexer
from supportdesk_ingest.settings import IngestSettings
from supportdesk_platform.kafka import DeadLetters, consumer_options

_DOCUMENT = TypeAdapter[DocumentEvent](DocumentEvent)


def build_router(settings: IngestSettings, indexer: Indexer) -> KafkaRouter:
    topics = settings.topics
    router = KafkaRouter()
    dead_letters = DeadLetters(router.publisher(topics.dead_letters, title="ingest:deadletter"), "ingest")

    async def dispatch(event: DocumentUploaded | DocumentDeleted) -> None:
        match event:
            case DocumentUploaded():
                await indexer.uploaded(event)
            case DocumentDeleted():
                await indexer.deleted(event)

    @router.subscriber(
        topics.document_uploads,
        group_id=settings.consumer_group,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title="ingest:uploads",
        **consumer_options(settings),
    )
    async def on_document(message: KafkaMessage) -> None:
        await dead_letters.consume(_DOCUMENT, message, dispatch)

    return router

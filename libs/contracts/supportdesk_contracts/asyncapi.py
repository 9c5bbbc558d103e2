"""The AsyncAPI document of the event contracts, generated from the models.

    python -m supportdesk_contracts.asyncapi > docs/asyncapi.json

Each topic is documented as a channel carrying its event union; the field
descriptions and examples come from the Pydantic models.
"""

import sys
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from supportdesk_contracts.events import (
    DeadLetterEvent,
    DocumentEvent,
    DocumentStatusChanged,
    InboundEvent,
    OutboundEvent,
    SessionEscalated,
    TurnRequested,
)
from supportdesk_contracts.topics import Topics

CHANNELS: list[tuple[str, Any, str]] = [
    ("chat_inbound", InboundEvent, "Session log kept by the session worker (keyed by session id)."),
    ("agent_turns", TurnRequested, "Turns waiting for the agent, with the conversation so far."),
    ("chat_outbound", OutboundEvent, "Frames for clients; every gateway replica reads all of it."),
    ("escalations", SessionEscalated, "Sessions handed to a human agent."),
    (
        "document_uploads",
        DocumentEvent,
        "Documents to index or remove: the gateway's uploads, and any producer's (inline content or a reference; "
        "see DocumentUploaded and docs/documents-topic.md).",
    ),
    ("document_status", DocumentStatusChanged, "Outcomes of indexing, keyed by document id."),
    ("dead_letters", DeadLetterEvent, "Events a consumer gave up on, with the reason; and the replays of them."),
]


def build_document(topics: Topics | None = None) -> dict[str, Any]:
    topics = topics or Topics()
    broker = KafkaBroker("kafka:9092", description="SupportDesk events")
    for attribute, schema, description in CHANNELS:
        broker.publisher(getattr(topics, attribute), schema=schema, title=attribute, description=description)
    spec = AsyncAPI(broker, title="SupportDesk events", version="1.0.0", schema_version="3.0.0")
    document: dict[str, Any] = spec.to_specification().to_jsonable()
    return document


def main() -> None:
    import json

    # Sorted: FastStream orders channels differently from run to run.
    sys.stdout.write(json.dumps(build_document(), indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()

"""Log records carry the session and turn they are about, in both formats."""

import json
import logging
from collections.abc import Iterator

import pytest
from faststream.kafka import KafkaBroker, KafkaRouter, TestKafkaBroker
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext
from pydantic import TypeAdapter

from supportdesk_contracts.events import MessageReceived
from supportdesk_platform.kafka import DeadLetters, subscribe_events
from supportdesk_platform.logs import ContextFilter, JsonFormatter, TextFormatter, log_context
from supportdesk_session.settings import SessionWorkerSettings


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.addFilter(ContextFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def captured() -> Iterator[Captured]:
    handler = Captured()
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


def test_both_formats_show_the_bound_ids(captured: Captured) -> None:
    with log_context(session_id="s-1", correlation_id="m-1"):
        logging.getLogger("any.library").warning("something happened", extra={"detail": 3})
    logging.getLogger("any.library").warning("outside")
    inside, outside = captured.records
    entry = json.loads(JsonFormatter("test").format(inside))
    assert (entry["session_id"], entry["correlation_id"], entry["detail"]) == ("s-1", "m-1", 3)
    assert "'session_id': 's-1'" in TextFormatter("test").format(inside)
    assert json.loads(JsonFormatter("test").format(outside))["session_id"] is None


async def test_records_emitted_while_handling_an_event_carry_its_ids(captured: Captured, unique: str) -> None:
    settings = SessionWorkerSettings(kafka_topic_prefix=unique)
    router = KafkaRouter()
    handler_log = logging.getLogger("supportdesk.test.handler")

    async def handle(event: MessageReceived) -> None:
        handler_log.info("handling")

    dead_letters = DeadLetters(router.publisher(settings.topics.dead_letters), "test")
    subscribe_events(
        router,
        settings,
        topic=settings.topics.chat_inbound,
        group_id="g",
        title="t",
        adapter=TypeAdapter(MessageReceived),
        dead_letters=dead_letters,
        handler=handle,
    )
    broker = KafkaBroker()
    broker.include_router(router)
    event = MessageReceived(
        session_id="s-42", message_id="m-7", correlation_id="m-7", content="hi", channel="ws", gateway_id="g"
    )
    async with TestKafkaBroker(broker):
        await broker.publish(event, settings.topics.chat_inbound)
    [record] = [r for r in captured.records if r.name == "supportdesk.test.handler"]
    assert (record.session_id, record.correlation_id) == ("s-42", "m-7")  # type: ignore[attr-defined]


def test_records_carry_the_current_trace(captured: Captured) -> None:
    """A log line leads to its trace: the ids of the span current when it was
    written (none outside one)."""
    context = SpanContext(trace_id=0x0AF7651916CD43DD8448EB211C80319C, span_id=0xB7AD6B7169203331, is_remote=False)
    with trace.use_span(NonRecordingSpan(context)):
        logging.getLogger("any.library").warning("inside a span")
    logging.getLogger("any.library").warning("outside")
    inside, outside = (json.loads(JsonFormatter("test").format(r)) for r in captured.records)
    assert (inside["trace_id"], inside["span_id"]) == ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")
    assert inside["trace_sampled"] is False  # no flags: an unsampled trace, not in any backend
    assert (outside["trace_id"], outside["span_id"], outside["trace_sampled"]) == (None, None, None)

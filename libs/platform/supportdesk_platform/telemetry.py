"""Tracing: one trace per chat message, across the broker.

Configured by the standard OpenTelemetry variables, read by the SDK itself
(`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_PROTOCOL`,
`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER` and
`_ARG`, `OTEL_BSP_*`); `ServiceSettings` names the ones that decide whether to
trace at all, so a typo in the protocol fails at start-up, not silently.

Without an endpoint nothing is installed: the API's own no-op tracer stays,
and the broker gets no tracing middleware, so an untraced deployment pays
nothing for it. With one, the FastStream middleware carries the W3C
`traceparent` in every Kafka message's headers and makes the messaging spans
(system, destination, partition, offset, conversation id); our code adds the
consumer group and the spans of its own work (`tracer`).
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagate import set_global_textmap
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Span, SpanKind
from opentelemetry.util.types import Attributes

from supportdesk_platform.settings import ServiceSettings

log = logging.getLogger(__name__)

tracer = trace.get_tracer("supportdesk")
"""Spans of SupportDesk's own work; a proxy until (unless) tracing is configured."""

CONSUMER_GROUP = "messaging.consumer.group.name"


def tracing_enabled() -> bool:
    """True once `configure_tracing` installed an SDK provider in this process."""
    return isinstance(trace.get_tracer_provider(), TracerProvider)


def _exporter(protocol: str) -> SpanExporter:
    # Imported on use: an untraced service never loads gRPC.
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    return HttpExporter()


def configure_tracing(service: str, settings: ServiceSettings) -> bool:
    """Installs the SDK's tracer provider when an OTLP endpoint is set (and
    OTEL_SDK_DISABLED / OTEL_TRACES_EXPORTER=none do not say otherwise).
    `service` names the resource unless OTEL_SERVICE_NAME (or service.name in
    OTEL_RESOURCE_ATTRIBUTES) does. True if traces are exported."""
    if not settings.tracing_wanted or tracing_enabled():
        return tracing_enabled()
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: f"supportdesk-{service}"}))
    # The sampler comes from OTEL_TRACES_SAMPLER(_ARG): parent-based always-on by default.
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(_exporter(settings.otlp_traces_protocol)))
    trace.set_tracer_provider(provider)
    log.info(
        "tracing on",
        extra={"service_name": resource.attributes.get(SERVICE_NAME), "protocol": settings.otlp_traces_protocol},
    )
    return True


FLUSH_MILLIS = 5_000


def shutdown_tracing() -> None:
    """Exports what is buffered (a stop must not lose the last traces), for
    at most a few seconds: a collector that is down must not hold a pod past
    its grace period."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.force_flush(FLUSH_MILLIS)
        provider.shutdown()


class NoRemoteParent(TextMapPropagator):
    """A propagator that reads nothing from a request: for the public edge,
    where a client's `traceparent` must not decide what is recorded. (An
    empty CompositePropagator would return no context at all, which breaks
    the instrumentation that attaches it.)"""

    def extract(self, carrier: Any, context: Context | None = None, getter: Any = None) -> Context:
        return context if context is not None else Context()

    def inject(self, carrier: Any, context: Context | None = None, setter: Any = None) -> None:
        return None

    @property
    def fields(self) -> set[str]:
        return set()


def untrusted_edge() -> None:
    """HTTP requests start traces of their own (the process's propagator is
    for what it receives over HTTP only; Kafka headers are FastStream's)."""
    set_global_textmap(NoRemoteParent())


def broker_middlewares() -> list[Any]:
    """The broker's tracing middleware, when tracing is on."""
    return [KafkaTelemetryMiddleware()] if tracing_enabled() else []


def consumed_by(group: str | None, record: Any) -> None:
    """Completes the current consume span with what FastStream's middleware
    leaves out: the consumer group, and the current messaging conventions'
    names beside its older ones (destination, operation type, partition,
    offset), so a backend keyed on either finds the topic."""
    current = trace.get_current_span()
    if not current.is_recording():
        return
    attributes: dict[str, str | int] = {
        "messaging.destination.name": str(getattr(record, "topic", "")),
        "messaging.operation.type": "process",
        "messaging.destination.partition.id": str(getattr(record, "partition", "")),
        "messaging.kafka.offset": int(getattr(record, "offset", -1)),
    }
    if group:
        attributes[CONSUMER_GROUP] = group
    current.set_attributes(attributes)


@contextmanager
def span(name: str, attributes: Attributes = None, kind: SpanKind = SpanKind.INTERNAL) -> Iterator[Span]:
    """A child span of the current one, current within the block."""
    with tracer.start_as_current_span(name, kind=kind, attributes=attributes) as current:
        yield current

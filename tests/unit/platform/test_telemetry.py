"""Tracing is configured by the standard OTEL_* variables, and is off (the
API's no-op tracer, no broker middleware) without an endpoint. Each case runs
in a process of its own: a tracer provider is set once per process."""

import json
import os
import subprocess
import sys

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from supportdesk_contracts.events import MessageReceived
from supportdesk_platform.kafka import build_broker
from supportdesk_platform.settings import ServiceSettings

PROBE = """
import json
from opentelemetry import trace
from supportdesk_platform.settings import ServiceSettings
from supportdesk_platform.telemetry import broker_middlewares, configure_tracing
on = configure_tracing("gateway", ServiceSettings())
provider = trace.get_tracer_provider()
processors = getattr(getattr(provider, "_active_span_processor", None), "_span_processors", ())
print(json.dumps({
    "on": on,
    "middlewares": [type(m).__name__ for m in broker_middlewares()],
    "resource": dict(provider.resource.attributes) if on else None,
    "sampler": provider.sampler.get_description() if on else None,
    "exporter": [type(p.span_exporter).__module__ for p in processors],
}))
"""


def probe(**env: str) -> dict[str, object]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True, timeout=60, check=True
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_no_endpoint_means_no_tracing() -> None:
    assert probe() == {"on": False, "middlewares": [], "resource": None, "sampler": None, "exporter": []}
    assert probe(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4318", OTEL_SDK_DISABLED="true")["on"] is False
    assert probe(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4318", OTEL_TRACES_EXPORTER="none")["on"] is False


def test_the_standard_variables_configure_it() -> None:
    traced = probe(
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4318",
        OTEL_TRACES_SAMPLER="traceidratio",
        OTEL_TRACES_SAMPLER_ARG="0.25",
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment.name=staging,service.namespace=support",
    )
    assert traced["on"] is True
    assert traced["middlewares"] == ["KafkaTelemetryMiddleware"]
    assert traced["exporter"] == ["opentelemetry.exporter.otlp.proto.http.trace_exporter"]
    assert "0.25" in str(traced["sampler"])
    resource = traced["resource"]
    assert isinstance(resource, dict)
    assert resource["service.name"] == "supportdesk-gateway"  # the default name
    assert resource["deployment.environment.name"] == "staging"
    grpc = probe(
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4317",
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
        OTEL_SERVICE_NAME="desk-gw-eu",
    )
    assert grpc["exporter"] == ["opentelemetry.exporter.otlp.proto.grpc.trace_exporter"]
    assert isinstance(grpc["resource"], dict)
    assert grpc["resource"]["service.name"] == "desk-gw-eu"


def test_an_unsupported_protocol_is_refused_at_start_up() -> None:
    with pytest.raises(ValidationError, match="otel_exporter_otlp_protocol"):
        ServiceSettings(otel_exporter_otlp_protocol="http/json")  # type: ignore[arg-type]


async def test_the_kafka_correlation_header_is_the_events_own() -> None:
    """Not a fresh id per message: an operator reading the topics with a plain
    consumer finds the turn's id in the header and in the event alike."""
    broker: KafkaBroker = build_broker(ServiceSettings(), "test", CollectorRegistry())
    headers: list[str | None] = []

    @broker.subscriber("inbound")  # type: ignore[untyped-decorator]
    async def seen(message: KafkaMessage) -> None:
        headers.append(message.correlation_id)

    event = MessageReceived(
        session_id="s-1", message_id="m-1", correlation_id="turn-1", content="hi", channel="ws", gateway_id="g"
    )
    async with TestKafkaBroker(broker):
        await broker.publish(event, "inbound")
        await broker.publish({"not": "an event"}, "inbound")
    assert headers[0] == "turn-1"
    assert headers[1]
    assert headers[1] != "turn-1"

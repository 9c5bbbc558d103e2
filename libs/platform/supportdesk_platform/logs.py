"""Structured logging: JSON lines in production, readable lines locally.

Every record emitted while an event or a request is handled carries the
`session_id` and `correlation_id` it is about: they live in context variables
(`log_context`), set once where the work starts, and a filter copies them onto
each record, whichever library emitted it.
"""

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from opentelemetry import trace

# Attributes a LogRecord always has; anything else was passed in `extra=`.
# uvicorn adds `color_message`, the same text with terminal colours.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName", "color_message"}

_session_id: ContextVar[str | None] = ContextVar("session_id", default=None)
_correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
# The HTTP request being served (X-Request-ID), in the gateway.
_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
CONTEXT_FIELDS = ("session_id", "correlation_id")
_BOUND = {"session_id": _session_id, "correlation_id": _correlation_id, "request_id": _request_id}


def bind(*, session_id: str | None = None, correlation_id: str | None = None, request_id: str | None = None) -> None:
    """Names the session, turn and request the current task works on, for
    every log record it emits from now on (a task's context is its own)."""
    if session_id is not None:
        _session_id.set(session_id)
    if correlation_id is not None:
        _correlation_id.set(correlation_id)
    if request_id is not None:
        _request_id.set(request_id)


@contextmanager
def log_context(*, session_id: str | None = None, correlation_id: str | None = None) -> Iterator[None]:
    """`bind` for a block: the previous values come back after it."""
    tokens = (_session_id.set(session_id), _correlation_id.set(correlation_id))
    try:
        yield
    finally:
        _session_id.reset(tokens[0])
        _correlation_id.reset(tokens[1])


class ContextFilter(logging.Filter):
    """Copies the bound ids onto each record, unless the call passed its own,
    and the current trace's ids (a log line leads to its trace, and back)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _BOUND.items():
            if getattr(record, name, None) is None:
                setattr(record, name, var.get())
        current = trace.get_current_span().get_span_context()
        if current.is_valid:
            record.trace_id = format(current.trace_id, "032x")
            record.span_id = format(current.span_id, "016x")
            # Only a sampled trace is in the backend: an unsampled one's ids
            # still tie a request's lines together, but lead nowhere else.
            record.trace_sampled = current.trace_flags.sampled
        return True


def _extras(record: logging.LogRecord) -> dict[str, object]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD and v is not None}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
            # Always present, so a log query can rely on the field.
            "session_id": getattr(record, "session_id", None),
            "correlation_id": getattr(record, "correlation_id", None),
            "trace_id": getattr(record, "trace_id", None),
            "span_id": getattr(record, "span_id", None),
            "trace_sampled": getattr(record, "trace_sampled", None),
        }
        entry.update(_extras(record))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__(f"%(asctime)s %(levelname)-7s {service} %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = _extras(record)
        return f"{line} {extra}" if extra else line


def configure_logging(service: str, level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service) if fmt == "json" else TextFormatter(service))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiokafka logs every coordinator hiccup at INFO; keep its warnings.
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    # botocore's DEBUG lines print whole requests, session tokens among their
    # headers: never below INFO, whatever LOG_LEVEL says.
    logging.getLogger("botocore").setLevel(max(root.level, logging.INFO))
    # uvicorn's own loggers go through ours (one format, one stream).
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True

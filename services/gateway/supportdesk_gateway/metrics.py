from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from supportdesk_gateway.hub import Hub

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry, hub: Hub) -> None:
        self.messages = Counter(
            "supportdesk_gateway_messages", "Chat messages accepted from clients.", ["channel"], registry=registry
        )
        self.turn_seconds = Histogram(
            "supportdesk_gateway_turn_seconds",
            "From publishing a user's message (REST, SSE or WebSocket) to its reply, error or handoff"
            " (outcome: reply, error, human, timeout).",
            ["channel", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.first_delta_seconds = Histogram(
            "supportdesk_gateway_first_delta_seconds",
            "From publishing a user's message to the first piece of its answer (a delta, or the whole reply).",
            ["channel"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.client_errors = Counter(
            "supportdesk_gateway_client_errors", "Rejected client input, by error code.", ["code"], registry=registry
        )
        self.rate_limited = Counter(
            "supportdesk_gateway_rate_limited",
            "Requests, messages, resumes and session creations refused by a rate limit, by the limit's name.",
            ["limit"],
            registry=registry,
        )
        # Series from the start, so increase() sees a first refusal.
        for limit in ("requests", "sessions", "messages", "resumes"):
            self.rate_limited.labels(limit)
        self.fingerprint_mismatches = Counter(
            "supportdesk_gateway_fingerprint_mismatches",
            "Session calls from a client other than the one the session is bound to.",
            ["mode"],
            registry=registry,
        )
        sockets = Gauge("supportdesk_gateway_websockets", "Open chat WebSockets on this replica.", registry=registry)
        sockets.set_function(lambda: hub.socket_count)

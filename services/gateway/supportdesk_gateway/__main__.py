import asyncio
import gc

from supportdesk_gateway.app import build_gateway
from supportdesk_gateway.settings import GatewaySettings
from supportdesk_platform.lifecycle import Listener, serve
from supportdesk_platform.logs import configure_logging
from supportdesk_platform.ops import ops_app
from supportdesk_platform.telemetry import configure_tracing

# proxy_headers off: uvicorn would believe X-Forwarded-For from any loopback
# peer; the client address is ours to decide (TRUSTED_PROXIES, limits.py).
# Above the 64 KiB frame limit the socket answers with an error frame; far
# above it, uvicorn closes the socket (1009) before reading it whole.
WS_MAX_SIZE = 256 * 1024
# uvicorn's lightest WebSocket protocol, named rather than left to "auto"
# (which picks by what is installed): no task of its own per socket. Per
# idle socket the legacy `websockets` one held 1.7 times as much, wsproto
# about as much without compression and 1.7 times with it (docs/benchmarks.md).
WS_PROTOCOL = "websockets-sansio"


def main() -> None:
    settings = GatewaySettings()
    configure_logging("gateway", settings.log_level, settings.log_format)
    configure_tracing("gateway", settings)
    gateway = build_gateway(settings)
    listeners = [
        Listener(
            gateway.app,
            settings.gateway_host,
            settings.gateway_port,
            {
                "ws": WS_PROTOCOL,
                "ws_max_size": WS_MAX_SIZE,
                "ws_per_message_deflate": settings.ws_per_message_deflate,
                "proxy_headers": False,
            },
        )
    ]
    if settings.gateway_ops_port is not None:
        listeners.append(
            Listener(ops_app(gateway.service.health), settings.ops_host, settings.gateway_ops_port, probes=True)
        )
    # Everything built so far lives as long as the process: out of the
    # collector's sight, a full collection has that much less to walk. With
    # 10,000 sockets open one took ~1 s (the active chats' p99 shows each).
    gc.freeze()
    asyncio.run(serve(gateway.service, listeners, settings))


if __name__ == "__main__":
    main()

import asyncio
import socket
import sys
from collections.abc import Callable

import uvicorn

from supportdesk_gateway.app import build_context, create_app
from supportdesk_gateway.settings import GatewaySettings
from supportdesk_platform.logs import configure_logging

DRAIN_SECONDS = 0.5


class GatewayServer(uvicorn.Server):
    """Closes every socket with 1001 "going away" before uvicorn's own
    shutdown, which would close them with 1012."""

    def __init__(self, config: uvicorn.Config, close_sockets: Callable[[], int]) -> None:
        super().__init__(config)
        self._close_sockets = close_sockets

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._close_sockets():
            await asyncio.sleep(DRAIN_SECONDS)
        await super().shutdown(sockets)


def main() -> None:
    settings = GatewaySettings()
    configure_logging("gateway", settings.log_level, settings.log_format)
    context = build_context(settings)
    config = uvicorn.Config(
        create_app(settings, context),
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_level="warning",
        ws_max_size=256 * 1024,
    )
    try:
        GatewayServer(config, context.hub.close_all).run()
    except KeyboardInterrupt:
        # uvicorn re-raises SIGINT after its graceful shutdown.
        sys.exit(130)


if __name__ == "__main__":
    main()

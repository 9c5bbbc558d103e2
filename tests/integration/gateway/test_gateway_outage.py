"""The gateway with its session store down: clear 503s and close codes, no
crashes. The broker is real; Redis points at a port where nothing listens."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from devstack import free_port
from supportdesk_gateway.app import Gateway, build_gateway
from supportdesk_gateway.settings import GatewaySettings

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(kafka_bootstrap: str, unique: str) -> GatewaySettings:
    return GatewaySettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic_prefix=unique,
        kafka_partitions=1,
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
    )


@contextmanager
def running(gateway: Gateway) -> Iterator[TestClient]:
    """The gateway's own lifecycle, started on the test client's event loop."""
    with TestClient(gateway.app) as client:
        client.portal.call(gateway.service.start)
        try:
            yield client
        finally:
            client.portal.call(gateway.service.stop)


def test_http_calls_get_503_with_retry_after(settings: GatewaySettings) -> None:
    with running(build_gateway(settings)) as client:
        response = client.post("/api/v1/sessions", json={})
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "2"
        assert "unavailable" in response.json()["detail"]
        ready = client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["redis"]["status"] == "down"
        assert ready.json()["checks"]["kafka"]["status"] == "up"


def test_sockets_close_with_try_again_later(settings: GatewaySettings) -> None:
    with running(build_gateway(settings)) as client:
        with (
            client.websocket_connect(f"/ws?session_id={uuid.uuid4()}&token=t") as ws,
            pytest.raises(WebSocketDisconnect) as closed,
        ):
            ws.receive_json()
        assert closed.value.code == 1013


async def test_a_session_token_is_still_required_first(settings: GatewaySettings) -> None:
    # Without a token the answer is 401 whatever the store's state.
    app = build_gateway(settings).app
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert (await client.get(f"/api/v1/sessions/{uuid.uuid4()}")).status_code == 401

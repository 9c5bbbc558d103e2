"""The fault suite: users chat over WebSockets through two gateways while one
thing at a time breaks, and every message is counted (chatters.py): sent,
answered, lost, answered twice, delivered twice, and the time to recover.

The system runs as `KAFKA_STORAGE=durable make run` would, supervised (a
killed process is started again), with Redis persisting every write, and
the agent answering through an OpenAI-compatible server scripted to fail on
demand. `make test` runs it short (4 users, a few seconds around each
fault); `make test-faults` runs it in full (16 users, longer) and writes the
table to docs/reliability.md.
"""

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest
from chatters import Chatter, Tally, tally

from devstack import Stack, free_port, http_ok, stop_process, wait_for
from scripted_llm import ScriptedLlm, serve
from stacks import StackFactory, Supervising

pytestmark = pytest.mark.e2e

FULL = os.environ.get("FAULTS") == "full"
USERS = 16 if FULL else 4
BEFORE_SECONDS = 5.0 if FULL else 2.0
"""Traffic before the fault."""
AFTER_SECONDS = 20.0 if FULL else 5.0
"""Traffic once everything is ready again."""
QDRANT_SERVER = Path(__file__).with_name("qdrant_server.py")
REPORT = os.environ.get("FAULTS_REPORT")
"""Where the table is written (docs/reliability.md in `make test-faults`)."""
ROWS: list[tuple[str, Tally, str]] = []


@pytest.fixture(scope="module")
async def llm() -> AsyncIterator[ScriptedLlm]:
    # A word every 20 ms: an answer streams for a while, so a kill lands mid-answer.
    scripted = ScriptedLlm(answer="Standard shipping takes 3-5 business days [1].", word_seconds=0.02)
    server, task = await serve(scripted)
    yield scripted
    server.should_exit = True
    await task


def supervised(make_stack: StackFactory, llm: ScriptedLlm, data: Path, storage: str, **env: str) -> Iterator[Stack]:
    stack = make_stack(
        f"redis://127.0.0.1:{free_port()}/0",  # its own redis-server, persisting
        data,
        replicas=2,
        OPENAI_BASE_URL=llm.url,
        LLM_MODEL="scripted",
        LLM_TIMEOUT_SECONDS="3",
        LLM_MAX_RETRIES="0",
        LLM_BREAKER_FAILURES="3",
        LLM_BREAKER_COOLDOWN_SECONDS="2",
        LLM_BUDGET_TOKENS="0",
        ESCALATION_ON_NO_ANSWER="false",
        EVENT_RETRY_ATTEMPTS="20",
        EVENT_RETRY_MAX_SECONDS="5",
        **env,
    )
    stack.redis_persistence = True
    stack.kafka_storage = storage
    stack.start()
    supervising = Supervising(stack)
    yield stack
    supervising.stop()
    stack.stop()


@pytest.fixture(scope="module")
def stack(make_stack: StackFactory, llm: ScriptedLlm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The broker in memory: every fault but the broker's own."""
    yield from supervised(make_stack, llm, tmp_path_factory.mktemp("faults"), "memory")


@pytest.fixture(scope="module")
def durable_stack(
    make_stack: StackFactory, llm: ScriptedLlm, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The broker on durable storage, for its own restart. A system of its
    own, and a fresh one: the S3 emulator lists a partition's records on
    every poll, so it slows as records pile up (README, KAFKA_STORAGE)."""
    yield from supervised(make_stack, llm, tmp_path_factory.mktemp("faults-durable"), "durable")


@dataclass(frozen=True)
class QdrantServer:
    process: subprocess.Popen[bytes]
    url: str


@pytest.fixture(scope="module")
def qdrant() -> Iterator[QdrantServer]:
    """A Qdrant server (qdrant_server.py: Qdrant's API over its local engine)."""
    port = free_port()
    folder = tempfile.mkdtemp(prefix="qdrant-")
    server = QdrantServer(
        subprocess.Popen([sys.executable, str(QDRANT_SERVER), str(port), folder]), f"http://127.0.0.1:{port}"
    )
    wait_for(lambda: http_ok(f"{server.url}/collections"), 30, "the Qdrant server")
    yield server
    stop_process(server.process)


@pytest.fixture(scope="module")
def qdrant_stack(
    make_stack: StackFactory,
    llm: ScriptedLlm,
    qdrant: QdrantServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """Agent and ingest as processes of their own on the Qdrant server."""
    data = tmp_path_factory.mktemp("faults-qdrant")
    yield from supervised(make_stack, llm, data, "memory", QDRANT_URL=qdrant.url)


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    yield
    lines = table(ROWS)
    print("\n" + "\n".join(lines))  # the figures belong in the test log too
    if REPORT:
        Path(REPORT).write_text(document(lines))


def table(rows: list[tuple[str, Tally, str]]) -> list[str]:
    head = (
        "| fault | sent | answered | lost | answered twice | delivered twice | recovery (s) | reconnects"
        " | sessions lost | note |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|---|---|"]
    for name, t, note in rows:
        recovery = "-" if t.recovery_seconds is None else f"{t.recovery_seconds:.1f}"
        lines.append(
            f"| {name} | {t.sent} | {t.answered} | {t.lost} | {t.answered_twice} | {t.delivered_twice}"
            f" | {recovery} | {t.reconnects} | {t.sessions_lost} | {note} |"
        )
    return lines


def document(lines: list[str]) -> str:
    return (
        "# Reliability: the fault suite's figures\n\n"
        "Generated by `make test-faults` (tests/e2e/test_faults.py) on this machine"
        f" ({os.cpu_count()} cores): {USERS} users chat over WebSockets through two gateways, a message at"
        " a time, while one fault at a time is injected; each message is counted by what its user saw.\n\n"
        "- **answered twice**: two different replies (seqs) to one message. Goal 0.\n"
        "- **delivered twice**: the same reply frame again (a replay after a reconnect); a client drops it"
        " by its `seq`, as the chat page does, so no user sees it twice.\n"
        "- **recovery**: from the fault to the first answer to a message sent after it.\n"
        "- **sessions lost**: sessions whose state was lost (close 4004); the user starts a new one.\n\n"
        + "\n".join(lines)
        + "\n\nThe Qdrant row runs agent and ingest as processes of their own on `QDRANT_URL`. No Qdrant"
        " server can be installed on this machine, so that server is tests/e2e/qdrant_server.py: Qdrant's"
        " REST API (the part SupportDesk calls) over qdrant-client's own local engine, in a process the"
        " suite freezes; the services use their remote client, its timeouts and errors, as against Qdrant."
        " Each fault runs on a system of its own kind: the broker's restart on durable storage"
        " (`KAFKA_STORAGE=durable`), the others on the in-memory broker; Redis persists every write"
        " (append-only, fsync always) except in the last row, which measures what is inherently lost"
        " without persistence.\n"
    )


async def under(stack: Stack, inject: Callable[[], Awaitable[None]]) -> Tally:
    """Users chat; `inject` breaks something; once every process is ready
    again they chat a little more, then wait for what they are owed."""
    gateways = [f"http://127.0.0.1:{stack.gateway_port + i}" for i in range(stack.gateway_replicas)]
    chatters = [Chatter(gateways, replica=i) for i in range(USERS)]
    stop = asyncio.Event()
    running = [asyncio.create_task(c.run(stop)) for c in chatters]
    await asyncio.sleep(BEFORE_SECONDS)
    # Every user chatting before the fault, however slow the machine is.
    async with asyncio.timeout(120):
        while not all(any(s.replies for s in c.sent) for c in chatters):
            await asyncio.sleep(0.1)
    fault_at = time.monotonic()
    await inject()
    await all_ready(stack)
    await asyncio.sleep(AFTER_SECONDS)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*running), timeout=240)
    return tally(chatters, fault_at)


async def all_ready(stack: Stack, timeout: float = 180) -> None:
    async with asyncio.timeout(timeout):
        for name in [p.name for p in stack.processes]:
            while True:
                process = stack.process(name)  # the supervisor may have started it again
                alive = process.popen.poll() is None
                if alive and (process.ready_url is None or await asyncio.to_thread(http_ok, process.ready_url)):
                    break
                await asyncio.sleep(0.2)


def kill(stack: Stack, name: str) -> Callable[[], Awaitable[None]]:
    async def inject() -> None:
        os.kill(stack.process(name).popen.pid, signal.SIGKILL)
        await asyncio.sleep(1.5)  # the supervisor notices and starts it again

    return inject


def record(name: str, result: Tally, note: str = "", inherent_loss: bool = False) -> None:
    ROWS.append((name, result, note))
    assert result.sent > USERS, asdict(result)
    assert result.answered_twice == 0, asdict(result)
    if not inherent_loss:
        assert (result.lost, result.sessions_lost) == (0, 0), asdict(result)


async def test_kill_the_agent_mid_answer(stack: Stack) -> None:
    record("`kill -9` agent (+ingest) mid-answer", await under(stack, kill(stack, "agent+ingest")))


async def test_kill_the_session_worker(stack: Stack) -> None:
    record("`kill -9` session worker", await under(stack, kill(stack, "session")))


async def test_kill_one_of_two_gateways(stack: Stack) -> None:
    name = f"gateway-{stack.gateway_port + 1}"
    record("`kill -9` one of two gateways", await under(stack, kill(stack, name)), "its users resume on the other")


async def test_restart_the_durable_broker(durable_stack: Stack) -> None:
    record(
        "`kill -9` broker (durable storage)",
        await under(durable_stack, kill(durable_stack, "broker")),
        "KAFKA_STORAGE=durable: 2 partitions, polls of 50 ms",
    )


async def test_qdrant_unavailable_for_a_while(qdrant_stack: Stack, qdrant: QdrantServer) -> None:
    """Frozen (SIGSTOP) for 8 s: every search hangs until the client's
    timeout, as with a stalled server or a network partition."""

    async def inject() -> None:
        qdrant.process.send_signal(signal.SIGSTOP)
        try:
            await asyncio.sleep(8)
        finally:
            qdrant.process.send_signal(signal.SIGCONT)

    record("Qdrant server frozen for 8 s", await under(qdrant_stack, inject), "agent and ingest on QDRANT_URL")


async def test_restart_redis_with_persistence(stack: Stack) -> None:
    record("`kill -9` Redis (append-only, fsync always)", await under(stack, kill(stack, "redis")))


@pytest.mark.parametrize(
    ("fault", "breaks"),
    [
        ("LLM failing (500) for 5 s", {"then": "500"}),
        ("LLM slower than its timeout for 5 s", {"slow_when": "", "slow_seconds": 5.0}),
        ("LLM stream cut mid-way for 5 s", {"then": "cut"}),
    ],
)
async def test_the_llm_misbehaving(stack: Stack, llm: ScriptedLlm, fault: str, breaks: dict[str, object]) -> None:
    healthy = {name: getattr(llm, name) for name in breaks}

    async def inject() -> None:
        for name, value in breaks.items():
            setattr(llm, name, value)
        await asyncio.sleep(5)
        for name, value in healthy.items():
            setattr(llm, name, value)

    result = await under(stack, inject)
    record(fault, result, f"answered from the passages meanwhile; {result.wrong} without the fact")
    assert result.wrong == 0, asdict(result)


async def test_restart_redis_without_persistence(stack: Stack) -> None:
    """The inherent loss, measured: Redis restarted with nothing on disk (the
    last test: it wipes every session). Sessions and their history are gone;
    a user is told (close 4004) and starts a new session, as the page does;
    the messages in flight at that moment are lost with their session."""
    folder = stack.data_dir / "redis"

    async def inject() -> None:
        os.kill(stack.process("redis").popen.pid, signal.SIGKILL)
        stack.process("redis").popen.wait()
        for stored in folder.rglob("*"):
            if stored.is_file():
                stored.unlink()  # before the supervisor starts it again
        await asyncio.sleep(1.5)

    result = await under(stack, inject)
    record("`kill -9` Redis without persistence", result, "inherent: the state was only in memory", True)
    assert result.sessions_lost == USERS, asdict(result)
    assert result.lost <= USERS, asdict(result)  # at most the message each user had in flight

"""Benchmarks of locally started systems (loopback only, bounded in time).

    make bench                      # every section
    python tools/bench.py knowledge transport tracing sockets

Each section starts its own stack like `make run` (own broker, free ports,
unique topics) and drives it from outside with `loadgen` over WebSockets:

  knowledge  full retrieval turns (query embedding, vector search over
             ≥ 10k chunks, extractive answer): 32 sessions back to back, then
             paced at half that rate; memory of each process
  transport  the same client against the pipeline with AGENT_ANSWERER=echo,
             and against a bare uvicorn/FastAPI WebSocket echo (the ceiling)
  tracing    the knowledge turns again with every message traced (sampler
             at 100 %, OTLP/HTTP to a receiver in this process) vs not
  sockets    BENCH_SOCKETS (default 10,000) idle WebSockets on one gateway:
             its RSS before and after, the connect rate, and the latency of
             a few active chats with and without them (AGENT_ANSWERER=echo);
             the gateway's WS_* settings come from this process's environment

It prints Markdown; docs/benchmarks.md keeps the figures with the machine's facts.
"""

import asyncio
import multiprocessing
import os
import platform
import random
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import loadgen
import numpy as np
from loadgen import Load

import otlp_receiver
from devstack import Stack, free_port, http_ok, wait_for
from otlp_receiver import Receiver

SESSIONS = 32
SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
FILLER_CHUNKS = int(os.environ.get("BENCH_CHUNKS", "10000"))
FILLER_PER_DOCUMENT = 20
IDLE_SOCKETS = int(os.environ.get("BENCH_SOCKETS", "10000"))
ACTIVE_SESSIONS = 4
# Handshakes in flight at once, and session creations (CPU-bound in the
# gateway: more at once only queue, and idle kept-alive connections time out).
OPENING_CONCURRENCY = 100
CREATING_CONCURRENCY = 32
CREATE_ATTEMPTS = 3
# Descriptors besides the sockets: the HTTP pool, the broker, Redis, logs.
SPARE_FILES = 1000
ROOT = Path(__file__).resolve().parent.parent

# Questions the sample knowledge answers, each sent with a varying tail: a
# repeated question would be answered from the query-embedding cache, and
# the benchmark would not measure the embedding it claims to.
QUESTIONS = [
    "How long does standard shipping take?",
    "What is your refund policy?",
    "Do you ship internationally?",
    "How can I reset my password?",
    "Which payment methods do you accept?",
    "What warranty do products come with?",
    "What do premium members get?",
    "How do I track my order?",
]


def question(n: int) -> str:
    return f"{QUESTIONS[n % len(QUESTIONS)]} (order {random.randrange(10**6)})"


def echo_text(n: int) -> str:
    return f"ping {n} {random.randrange(10**6)}"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def new_stack(**env: str) -> Stack:
    data = ROOT / ".run" / f"bench-{uuid.uuid4().hex[:6]}"
    return Stack(
        gateway_port=free_port(),
        data_dir=data,
        ops_ports={"session": free_port(), "agent": free_port(), "ingest": free_port()},
        extra_env={
            "KAFKA_TOPIC_PREFIX": f"bench{uuid.uuid4().hex[:6]}",
            "REDIS_KEY_PREFIX": f"bench{uuid.uuid4().hex[:6]}",
            "LOG_LEVEL": "WARNING",
            # A load test from one address is not abuse.
            "RATE_LIMIT_ENABLED": "false",
            # Every turn a bot turn: a question that found nothing would hand
            # its session to a human, and the bot would answer it no more.
            "ESCALATION_ON_NO_ANSWER": "false",
            **env,
        },
        log_dir=data / "logs",
    )


async def prefill(data: Path, chunks: int) -> None:
    """The stack's Qdrant folder with the sample knowledge (really embedded)
    and `chunks` filler chunks on random unit vectors: an exact search costs
    the same whatever the vectors say, and the filler never outranks the
    samples, so answers stay the real ones. Marked as samples, so the ingest
    worker neither loads the samples again nor retires them."""
    from supportdesk_ingest.samples import sample_documents, sample_ids
    from supportdesk_knowledge.base import KnowledgeBase
    from supportdesk_knowledge.index import Chunk
    from supportdesk_knowledge.settings import KnowledgeSettings

    kb = await KnowledgeBase.open(KnowledgeSettings(qdrant_path=str(data / "qdrant")))
    try:
        for document_id, (title, body) in zip(sample_ids(), sample_documents(), strict=True):
            await kb.add_document(document_id, title, body, sample=True, version=1)
        rng = np.random.default_rng(7)
        words = ["order", "parcel", "invoice", "courier", "warranty", "account", "basket", "voucher"]
        for d in range(chunks // FILLER_PER_DOCUMENT):
            vectors = rng.normal(size=(FILLER_PER_DOCUMENT, kb.embedder.dimension)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            batch = [
                Chunk(f"filler-{d}", f"Filler {d}", i, " ".join(rng.choice(words, 40)), sample=True, version=1)
                for i in range(FILLER_PER_DOCUMENT)
            ]
            await kb.index.replace_document(batch, vectors.tolist())
        print(f"Index: {await kb.index.count()} chunks")
    finally:
        await kb.close()


def ws_urls(stack: Stack, sessions: int) -> list[str]:
    base = f"http://127.0.0.1:{stack.gateway_port}"
    urls = []
    with httpx.Client(base_url=base, timeout=30, headers={"User-Agent": loadgen.USER_AGENT}) as client:
        for _ in range(sessions):
            s = client.post("/api/v1/sessions", json={}).raise_for_status().json()
            urls.append(f"ws://127.0.0.1:{stack.gateway_port}/ws?session_id={s['session_id']}&token={s['token']}")
    return urls


@dataclass
class Measured:
    full: Load
    half: Load
    rss: dict[str, float]
    details: dict[str, Any]


def measure(stack: Stack, message: loadgen.Message, seconds: float = SECONDS) -> Measured:
    urls = ws_urls(stack, SESSIONS)
    asyncio.run(loadgen.run(urls[:4], message, 3))  # warm-up
    full = asyncio.run(loadgen.run(urls, message, seconds))
    half = asyncio.run(loadgen.run(urls, message, seconds, rate=full.rate / 2))
    # By role: a gateway's name carries its port, different in each run.
    rss = {p.name.split("-")[0]: rss_mib(p.popen.pid) for p in stack.processes}
    details = httpx.get(f"http://127.0.0.1:{stack.ops_ports['agent']}/health/diagnostics", timeout=10).json()
    return Measured(full, half, rss, details)


def started(stack: Stack, before: Callable[[], None] | None = None) -> Stack:
    if before is not None:
        before()
    began = time.perf_counter()
    stack.start()
    print(f"(stack ready in {time.perf_counter() - began:.1f} s)")
    return stack


def row(name: str, load: Load, first: bool = True) -> str:
    first_delta = f"{load.pct(0.5, load.first_deltas):.1f}" if first and load.first_deltas else "–"
    return (
        f"| {name} | {load.rate:.1f} | {load.median():.1f} | {load.pct(0.99):.1f} | {first_delta} | "
        f"{len(load.replies)} | {load.lost} | {load.errors} | {load.handoffs} |"
    )


HEADER = (
    "| load | turns/s | reply p50 (ms) | reply p99 (ms) | first delta p50 (ms) | turns | lost | errors | handoffs |"
    "\n|---|---|---|---|---|---|---|---|---|"
)


def knowledge(tracing: bool = False) -> Measured:
    # BENCH_EMBEDDING_CACHE=0 measures every embedding (the default cache
    # favours a load of few questions about few passages).
    env: dict[str, str] = {"EMBEDDING_CACHE_SIZE": os.environ.get("BENCH_EMBEDDING_CACHE", "10000")}
    receiver, server = Receiver(), None
    if tracing:
        server = otlp_receiver.start(receiver)
        env |= {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_TRACES_SAMPLER": "always_on"}
    stack = new_stack(**env)
    try:
        started(stack, lambda: asyncio.run(prefill(stack.data_dir, FILLER_CHUNKS)))
        measured = measure(stack, question)
    finally:
        stack.stop()
        if server is not None:
            server.shutdown()
            server.server_close()
    measured.details["spans"] = len(receiver.spans)
    return measured


def report_knowledge(m: Measured) -> None:
    print(f"\n### Full retrieval turns ({SESSIONS} WebSocket sessions, ≥ {FILLER_CHUNKS:,} chunks)\n")
    print(HEADER)
    print(row("back to back", m.full))
    print(row("paced at half that rate", m.half))
    embedder = m.details.get("embedder", {})
    if embedder:
        hits, misses = embedder["cache_hits"], embedder["cache_misses"]
        print(
            f"\nEmbedder: {embedder['model_calls']:,} model calls; cache {hits:,} hits, {misses:,} misses"
            f" ({hits / max(1, hits + misses):.0%} hits)"
        )
    print("\n| process | RSS (MiB) |\n|---|---|")
    for name, mib in m.rss.items():
        print(f"| {name} | {mib:.0f} |")


def bare_echo(pipeline_half_rate: float) -> tuple[Load, Load, Load]:
    """The ceiling, driven by the same client: back to back, paced at half
    its own rate, and paced at the rate the pipeline was at half load."""
    port = free_port()
    process = subprocess.Popen([sys.executable, str(ROOT / "tools" / "echo_server.py"), str(port)])
    try:
        wait_for(lambda: http_ok(f"http://127.0.0.1:{port}/docs"), 30, "the bare echo server")
        urls = [f"ws://127.0.0.1:{port}/ws" for _ in range(SESSIONS)]
        asyncio.run(loadgen.run(urls[:4], echo_text, 2))
        full = asyncio.run(loadgen.run(urls, echo_text, SECONDS))
        half = asyncio.run(loadgen.run(urls, echo_text, SECONDS, rate=full.rate / 2))
        same = asyncio.run(loadgen.run(urls, echo_text, SECONDS, rate=pipeline_half_rate))
        return full, half, same
    finally:
        process.terminate()
        process.wait(10)


def transport() -> None:
    stack = new_stack(AGENT_ANSWERER="echo")
    try:
        started(stack)
        pipeline = measure(stack, echo_text)
    finally:
        stack.stop()
    ceiling, ceiling_half, same_rate = bare_echo(pipeline.half.rate)
    print(f"\n### Transport ({SESSIONS} WebSocket sessions, AGENT_ANSWERER=echo) vs a bare uvicorn echo\n")
    print(HEADER)
    print(row("pipeline, back to back", pipeline.full))
    print(row("pipeline, paced at half", pipeline.half))
    print(row("bare echo, back to back", ceiling, first=False))
    print(row("bare echo, paced at half its rate", ceiling_half, first=False))
    print(row("bare echo, at the pipeline's half rate", same_rate, first=False))
    print(
        f"\nPipeline / ceiling: {pipeline.full.rate / ceiling.rate:.1%} of the bare echo's turns/s;"
        " added latency at the pipeline's half load (the pipeline's percentile minus the bare echo's at the same"
        f" rate): p50 {pipeline.half.median() - same_rate.median():.1f} ms,"
        f" p99 {pipeline.half.pct(0.99) - same_rate.pct(0.99):.1f} ms"
    )
    print("\n| process | RSS (MiB) |\n|---|---|")
    for name, mib in pipeline.rss.items():
        print(f"| {name} | {mib:.0f} |")


def tracing(off: Measured) -> None:
    on = knowledge(tracing=True)
    print("\n### Tracing overhead (off: no OTEL endpoint; on: always_on, OTLP/HTTP to a local receiver)\n")
    print("| measure | off | on | on/off |\n|---|---|---|---|")
    for name, a, b in [
        ("turns/s, back to back", off.full.rate, on.full.rate),
        ("reply p50 at half load (ms)", off.half.median(), on.half.median()),
        ("reply p99 at half load (ms)", off.half.pct(0.99), on.half.pct(0.99)),
    ]:
        print(f"| {name} | {a:.1f} | {b:.1f} | {b / a:.2f} |")
    for name in on.rss:
        print(f"| RSS {name} (MiB) | {off.rss.get(name, float('nan')):.0f} | {on.rss[name]:.0f} | |")
    print(f"\nSpans received while tracing: {on.details['spans']:,}")


def gateway_pid(stack: Stack) -> int:
    return next(p.popen.pid for p in stack.processes if p.name.startswith("gateway"))


def open_files_limit(pid: int) -> int:
    """The soft RLIMIT_NOFILE of a running process."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise RuntimeError(f"no open-files limit in /proc/{pid}/limits")


def raise_open_files(needed: int) -> None:
    """This process's soft limit up to its hard one, for the client's sockets
    and for the gateway, which inherits it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise SystemExit(f"BENCH_SOCKETS={IDLE_SOCKETS} needs {needed} open files; the hard limit is {hard}")
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed if hard == resource.RLIM_INFINITY else hard, hard))


async def new_sessions(stack: Stack, count: int, concurrency: int = CREATING_CONCURRENCY) -> list[str]:
    """`count` sessions created over REST, at most `concurrency` at once; their socket URLs."""
    gate = asyncio.Semaphore(concurrency)
    client = httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{stack.gateway_port}",
        timeout=60,
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        headers={"User-Agent": loadgen.USER_AGENT},
    )

    async def one() -> str:
        async with gate:
            for attempt in range(1, CREATE_ATTEMPTS + 1):
                try:
                    response = await client.post("/api/v1/sessions", json={})
                except (httpx.ReadError, httpx.RemoteProtocolError):
                    # The server closed a kept-alive connection as the request
                    # went out (uvicorn's keep-alive timeout): a new one will do.
                    if attempt == CREATE_ATTEMPTS:
                        raise
                    continue
                s = response.raise_for_status().json()
                return f"ws://127.0.0.1:{stack.gateway_port}/ws?session_id={s['session_id']}&token={s['token']}"
        raise AssertionError("unreachable: the last attempt returns or raises")

    async with client:
        return list(await asyncio.gather(*(one() for _ in range(count))))


@dataclass
class IdleSockets:
    quiet: Load
    """The active chats with no idle socket open."""
    busy: Load
    """The same chats with every idle socket open."""
    after: Load
    """The same chats once the idle sockets closed (the machine may be busier or quieter than at first)."""
    opened: loadgen.Opened
    creating_seconds: float
    rss: dict[str, float]
    """Gateway RSS at each step, in MiB."""
    open_in_gateway: int
    load_averages: list[float] = field(default_factory=list)
    """The machine's 1-minute load average after each active load (other work shares its cores)."""


async def idle_sockets_load(stack: Stack) -> IdleSockets:
    gateway = gateway_pid(stack)
    active = await new_sessions(stack, ACTIVE_SESSIONS)
    await loadgen.run(active, echo_text, 3)  # warm-up
    quiet = await loadgen.run(active, echo_text, SECONDS)
    loads = [os.getloadavg()[0]]
    rss = {"start": rss_mib(gateway)}
    began = time.perf_counter()
    urls = await new_sessions(stack, IDLE_SOCKETS)
    creating = time.perf_counter() - began
    rss["sessions created"] = rss_mib(gateway)
    spawn = multiprocessing.get_context("spawn")
    ours, theirs = spawn.Pipe()
    holder = spawn.Process(target=loadgen.hold_until_told, args=(urls, OPENING_CONCURRENCY, theirs), daemon=True)
    holder.start()
    try:
        opened: loadgen.Opened = await asyncio.to_thread(ours.recv)
        await asyncio.sleep(2)  # let the last handshakes' garbage go
        rss["sockets open"] = rss_mib(gateway)
        async with httpx.AsyncClient(timeout=30) as client:
            url = f"http://127.0.0.1:{stack.gateway_port}/health/diagnostics"
            diagnostics = (await client.get(url)).raise_for_status().json()
        busy = await loadgen.run(active, echo_text, SECONDS)
        loads.append(os.getloadavg()[0])
        rss["after the active load"] = rss_mib(gateway)
    finally:
        if holder.is_alive():
            ours.send("close")
            await asyncio.to_thread(ours.recv)
        holder.join(30)
        if holder.is_alive():
            holder.kill()
    await asyncio.sleep(2)
    rss["sockets closed"] = rss_mib(gateway)
    after = await loadgen.run(active, echo_text, SECONDS)
    loads.append(os.getloadavg()[0])
    return IdleSockets(quiet, busy, after, opened, creating, rss, int(diagnostics["websockets"]), loads)


def idle_sockets() -> None:
    raise_open_files(IDLE_SOCKETS + SPARE_FILES)
    stack = new_stack(AGENT_ANSWERER="echo")
    try:
        started(stack)
        limit = open_files_limit(gateway_pid(stack))
        if limit < IDLE_SOCKETS + SPARE_FILES:
            raise SystemExit(f"the gateway may open {limit} files: too few for {IDLE_SOCKETS} sockets")
        m = asyncio.run(idle_sockets_load(stack))
    finally:
        stack.stop()
    settings = ", ".join(f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith("WS_")) or "defaults"
    opened = max(1, m.opened.sockets)
    print(f"\n### {IDLE_SOCKETS:,} idle WebSockets on one gateway (gateway settings: {settings})\n")
    print(
        f"Sessions: {IDLE_SOCKETS:,} created in {m.creating_seconds:.1f} s"
        f" ({IDLE_SOCKETS / m.creating_seconds:.0f}/s, {CREATING_CONCURRENCY} at once)."
        f" Sockets: {opened:,} opened in {m.opened.seconds:.1f} s ({m.opened.rate:.0f}/s, {OPENING_CONCURRENCY} at"
        f" once, by another process), {m.opened.failures.total()} failed {dict(m.opened.failures) or ''},"
        f" {m.open_in_gateway:,} open as the gateway counts them; extensions agreed: {m.opened.extensions};"
        f" gateway open-files limit {limit:,}."
    )
    print("\n| gateway | RSS (MiB) |\n|---|---|")
    for step, mib in m.rss.items():
        print(f"| {step} | {mib:.0f} |")
    per_socket = (m.rss["sockets open"] - m.rss["sessions created"]) * 1024 / opened
    from_start = (m.rss["sockets open"] - m.rss["start"]) * 1024 / opened
    print(f"\nPer socket: {per_socket:.1f} KiB (from the start, session creation included: {from_start:.1f} KiB)")
    print(f"\n### {ACTIVE_SESSIONS} active chats, back to back (AGENT_ANSWERER=echo)\n")
    print(HEADER)
    print(row("no idle socket open", m.quiet))
    print(row(f"{opened:,} idle sockets open", m.busy))
    print(row("no idle socket open (after closing them)", m.after))
    print(f"\nThe machine's 1-minute load average after each: {' / '.join(f'{x:.1f}' for x in m.load_averages)}")


INGEST_FILENAME = "support-manual.pdf"
INGEST_CHAT_SESSIONS = 4
INGEST_CHAT_RATE = 2.0
"""Turns per second of the chat load beside the ingestion: a few users, not a saturating load."""


@dataclass
class Indexed:
    document_id: str
    chunks: int
    seconds: float
    """From sending the upload to seeing `indexed` (polled every 50 ms)."""

    @property
    def rate(self) -> float:
        return self.chunks / self.seconds


async def upload_until_indexed(stack: Stack, filename: str, data: bytes) -> Indexed:
    """Uploads through the gateway as an operator would and polls the
    document until it is indexed."""
    admin = {"Authorization": f"Bearer {os.environ.get('ADMIN_API_KEY', 'dev-admin-key')}"}
    base = f"http://127.0.0.1:{stack.gateway_port}"
    async with httpx.AsyncClient(base_url=base, headers=admin, timeout=30) as client:
        began = time.perf_counter()
        files = {"file": (filename, data, "application/pdf")}
        document_id = (await client.post("/api/v1/documents", files=files)).raise_for_status().json()["document_id"]
        while True:
            record = (await client.get(f"/api/v1/documents/{document_id}")).raise_for_status().json()
            if record["status"] == "indexed":
                return Indexed(document_id, record["chunks"], time.perf_counter() - began)
            if record["status"] == "failed":
                raise RuntimeError(f"{filename} was not indexed: {record['error']}")
            await asyncio.sleep(0.05)


def raw_encoder(filename: str, data: bytes) -> tuple[int, dict[str, float], dict[str, float]]:
    """The chunks the knowledge base would embed for `data` (parsed, cut and
    headed as the ingest worker does, in this process) encoded by the
    project's Embedder with nothing around it: in one call (the model's own
    batches), and in the pipeline's bulk batches. Returns the chunks, the
    seconds of each way, and the seconds of each stage before the encoder."""
    from supportdesk_ingest.indexing import title_of
    from supportdesk_ingest.limits import ParseLimits
    from supportdesk_ingest.parsing import extract_text
    from supportdesk_knowledge.base import headed
    from supportdesk_knowledge.chunking import chunk_document
    from supportdesk_knowledge.embedder import BULK_BATCH_TEXTS, Embedder
    from supportdesk_knowledge.settings import KnowledgeSettings

    settings = KnowledgeSettings()
    embedder = Embedder(settings.embedding_model_path, settings.embedding_batch_size, settings.torch_num_threads, 0)
    began = time.perf_counter()
    text = extract_text(filename, data, ParseLimits())
    parsed = time.perf_counter()
    passages = chunk_document(
        text,
        embedder.count_tokens,
        settings.rag_chunk_tokens,
        settings.rag_chunk_overlap_tokens,
        count_batch=embedder.count_tokens_batch,
    )
    cut = time.perf_counter()
    texts = sorted((headed(title_of(filename), p) for p in passages), key=len, reverse=True)
    embedder.encode_sync(texts[: embedder.batch_size])  # warm-up: the first call allocates
    raw: dict[str, float] = {}
    encoding = time.perf_counter()
    embedder.encode_sync(texts)
    raw[f"one call (batches of {embedder.batch_size})"] = time.perf_counter() - encoding
    encoding = time.perf_counter()
    for start in range(0, len(texts), BULK_BATCH_TEXTS):
        embedder.encode_sync(texts[start : start + BULK_BATCH_TEXTS])
    raw[f"calls of {BULK_BATCH_TEXTS}, as the pipeline's"] = time.perf_counter() - encoding
    return len(texts), raw, {"parse (in this process)": parsed - began, "chunk": cut - parsed}


def ingestion() -> None:
    """A 200-page text PDF uploaded through the gateway of a stack started as
    `make run`, timed to `indexed`, vs the raw encoder on the same chunks in
    this run; then uploaded again while a few sessions chat, vs the same chat
    alone. The sample knowledge stays (SAMPLE_KNOWLEDGE_RETIRES=false), so
    the chat asks the same passages throughout."""
    from manual_pdf import manual_pdf

    data = manual_pdf()
    chunks, raw, stages = raw_encoder(INGEST_FILENAME, data)
    stack = new_stack(SAMPLE_KNOWLEDGE_RETIRES="false")
    try:
        started(stack)
        urls = ws_urls(stack, INGEST_CHAT_SESSIONS)
        asyncio.run(loadgen.run(urls, question, 3))  # warm-up
        alone = asyncio.run(upload_until_indexed(stack, INGEST_FILENAME, data))
        chat = asyncio.run(loadgen.run(urls, question, SECONDS, rate=INGEST_CHAT_RATE))

        async def beside_chat() -> tuple[Indexed, Load]:
            # The chat load ends before the indexing does (slower beside it
            # than alone), so every turn it times ran during the indexing.
            load = loadgen.run(urls, question, alone.seconds * 0.9, rate=INGEST_CHAT_RATE)
            return await asyncio.gather(upload_until_indexed(stack, INGEST_FILENAME, data), load)

        during, chat_during = asyncio.run(beside_chat())
    finally:
        stack.stop()
    # The pipeline against the faster way of encoding the same texts alone.
    raw_rate = chunks / min(raw.values())
    print(f"\n### Ingestion: a {len(data) / 1024:.0f} KB, 200-page text PDF of {alone.chunks} chunks\n")
    print("| measure | seconds | chunks/s | of the raw rate |\n|---|---|---|---|")
    for name, seconds in raw.items():
        rate = chunks / seconds
        print(f"| raw encoder, {name} | {seconds:.1f} | {rate:.1f} | {rate / raw_rate:.0%} |")
    for name, indexed in [("pipeline: upload to `indexed`", alone), ("the same, beside the chat load", during)]:
        print(f"| {name} | {indexed.seconds:.1f} | {indexed.rate:.1f} | {indexed.rate / raw_rate:.0%} |")
    print("\nBefore the encoder, in this process: " + ", ".join(f"{k} {v:.2f} s" for k, v in stages.items()))
    print(f"\n#### Chat turns ({INGEST_CHAT_SESSIONS} sessions paced at {INGEST_CHAT_RATE:g} turns/s)\n")
    print(HEADER)
    print(row("alone", chat))
    print(row("during the ingestion", chat_during))


def machine() -> None:
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in lines if "model name" in line), platform.processor())
    print(f"Machine: {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, {platform.platform()}")


def main() -> None:
    sections = sys.argv[1:] or ["knowledge", "transport", "tracing", "sockets"]
    machine()
    off: Measured | None = None
    if "knowledge" in sections or "tracing" in sections:
        off = knowledge()
        report_knowledge(off)
    if "transport" in sections:
        transport()
    if "tracing" in sections and off is not None:
        tracing(off)
    if "sockets" in sections:
        idle_sockets()
    if "ingestion" in sections:
        ingestion()
    sys.stdout.flush()


if __name__ == "__main__":
    main()

"""Benchmarks of locally started systems (loopback only, bounded in time).

    make bench                      # every section
    python tools/bench.py knowledge transport tracing

Each section starts its own stack like `make run` (own broker, free ports,
unique topics) and drives it from outside with `loadgen` over WebSockets:

  knowledge  full retrieval turns (query embedding, vector search over
             ≥ 10k chunks, extractive answer): 32 sessions back to back, then
             paced at half that rate; memory of each process
  transport  the same client against the pipeline with AGENT_ANSWERER=echo,
             and against a bare uvicorn/FastAPI WebSocket echo (the ceiling)
  tracing    the knowledge turns again with every message traced (sampler
             at 100 %, OTLP/HTTP to a receiver in this process) vs not

It prints Markdown; docs/benchmarks.md keeps the figures with the machine's facts.
"""

import asyncio
import os
import platform
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
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
    with httpx.Client(base_url=base, timeout=30) as client:
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


def machine() -> None:
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in lines if "model name" in line), platform.processor())
    print(f"Machine: {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, {platform.platform()}")


def main() -> None:
    sections = sys.argv[1:] or ["knowledge", "transport", "tracing"]
    machine()
    off: Measured | None = None
    if "knowledge" in sections or "tracing" in sections:
        off = knowledge()
        report_knowledge(off)
    if "transport" in sections:
        transport()
    if "tracing" in sections and off is not None:
        tracing(off)
    sys.stdout.flush()


if __name__ == "__main__":
    main()

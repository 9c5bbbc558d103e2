"""Benchmarks of a locally started system (loopback only, bounded in count).

    make bench

Starts the stack like `make run` (own broker, free ports, unique topics),
then measures chat-turn latency over REST and WebSocket (to ack, first
delta, reply), a concurrent WebSocket load, and each process's memory; then
the same with every message traced, for the cost of tracing.
"""

import asyncio
import json
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import websockets

import otlp_receiver
from devstack import Stack, free_port
from otlp_receiver import Receiver

QUESTION = "How long does standard shipping take?"
SEQUENTIAL_TURNS = 100
CONCURRENT_SESSIONS = 20
TURNS_PER_SESSION = 5


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def summary(name: str, values: list[float]) -> str:
    return (
        f"| {name} | {len(values)} | {statistics.median(values) * 1000:.1f} | "
        f"{pct(values, 0.95):.1f} | {pct(values, 0.99):.1f} |"
    )


async def session(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.post("/api/v1/sessions", json={})
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


async def rest_turns(base: str) -> list[float]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        s = await session(client)
        headers = {"Authorization": f"Bearer {s['token']}"}
        timings = []
        for _ in range(SEQUENTIAL_TURNS):
            began = time.perf_counter()
            r = await client.post(
                f"/api/v1/sessions/{s['session_id']}/messages", json={"content": QUESTION}, headers=headers
            )
            r.raise_for_status()
            timings.append(time.perf_counter() - began)
        return timings


async def ws_turns(base: str, ws_base: str, turns: int) -> dict[str, list[float]]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        s = await session(client)
    out: dict[str, list[float]] = {"ack": [], "first_delta": [], "reply": []}
    async with websockets.connect(f"{ws_base}/ws?session_id={s['session_id']}&token={s['token']}") as ws:
        for _ in range(turns):
            began = time.perf_counter()
            await ws.send(json.dumps({"type": "message", "content": QUESTION, "message_id": str(uuid.uuid4())}))
            seen_delta = False
            while True:
                frame = json.loads(await ws.recv())
                now = time.perf_counter() - began
                if frame["type"] == "ack":
                    out["ack"].append(now)
                elif frame["type"] == "delta" and not seen_delta:
                    seen_delta = True
                    out["first_delta"].append(now)
                elif frame["type"] == "reply":
                    out["reply"].append(now)
                    break
    return out


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Figures:
    rest: list[float]
    ws: dict[str, list[float]]
    loaded: list[float]
    elapsed: float

    @property
    def throughput(self) -> float:
        return len(self.loaded) / self.elapsed


async def measure(stack: Stack) -> Figures:
    base = f"http://127.0.0.1:{stack.gateway_port}"
    ws_base = f"ws://127.0.0.1:{stack.gateway_port}"
    await ws_turns(base, ws_base, 5)  # warm-up
    rest = await rest_turns(base)
    ws = await ws_turns(base, ws_base, SEQUENTIAL_TURNS)
    began = time.perf_counter()
    results = await asyncio.gather(*(ws_turns(base, ws_base, TURNS_PER_SESSION) for _ in range(CONCURRENT_SESSIONS)))
    elapsed = time.perf_counter() - began
    return Figures(rest, ws, [t for r in results for t in r["reply"]], elapsed)


def report(stack: Stack, figures: Figures) -> None:
    print("\n| measure (ms) | n | p50 | p95 | p99 |\n|---|---|---|---|---|")
    print(summary("REST turn (POST to JSON reply)", figures.rest))
    print(summary("WS message to ack", figures.ws["ack"]))
    print(summary("WS message to first delta", figures.ws["first_delta"]))
    print(summary("WS message to reply", figures.ws["reply"]))
    print(summary(f"WS reply, {CONCURRENT_SESSIONS} sessions at once", figures.loaded))
    print(
        f"\nThroughput under load: {figures.throughput:.1f} turns/s"
        f" ({len(figures.loaded)} turns in {figures.elapsed:.1f} s)"
    )
    print("\n| process | RSS (MiB) |\n|---|---|")
    for process in stack.processes:
        print(f"| {process.name} | {rss_mib(process.popen.pid):.0f} |")


def tracing_overhead(off: Figures, on: Figures, spans: int) -> None:
    """The same measures with every message traced (sampler at 100 %,
    exported over OTLP/HTTP to a receiver in this process) and without."""
    print("\n### Tracing overhead (off: no OTEL endpoint; on: always_on, OTLP/HTTP to a local receiver)\n")
    print("| measure | off | on | on/off |\n|---|---|---|---|")
    for name, a, b in [
        ("WS reply p50 (ms)", statistics.median(off.ws["reply"]), statistics.median(on.ws["reply"])),
        ("WS reply p99 (ms)", pct(off.ws["reply"], 0.99) / 1000, pct(on.ws["reply"], 0.99) / 1000),
        ("REST turn p50 (ms)", statistics.median(off.rest), statistics.median(on.rest)),
        ("loaded reply p50 (ms)", statistics.median(off.loaded), statistics.median(on.loaded)),
    ]:
        print(f"| {name} | {a * 1000:.1f} | {b * 1000:.1f} | {b / a:.2f} |")
    print(
        f"| throughput (turns/s) | {off.throughput:.1f} | {on.throughput:.1f} | {on.throughput / off.throughput:.2f} |"
    )
    print(f"\nSpans received while tracing: {spans}")


def new_stack(**env: str) -> Stack:
    data = Path(".run") / f"bench-{uuid.uuid4().hex[:6]}"
    return Stack(
        gateway_port=free_port(),
        data_dir=data,
        ops_ports={"session": free_port(), "agent": free_port(), "ingest": free_port()},
        extra_env={
            "KAFKA_TOPIC_PREFIX": f"bench{uuid.uuid4().hex[:6]}",
            "REDIS_KEY_PREFIX": "bench",
            "LOG_LEVEL": "WARNING",
            # A load test from one address is not abuse.
            "RATE_LIMIT_ENABLED": "false",
            **env,
        },
        log_dir=data / "logs",
    )


def run(stack: Stack) -> Figures:
    began = time.perf_counter()
    stack.start()
    print(f"Stack ready in {time.perf_counter() - began:.1f} s")
    try:
        figures = asyncio.run(measure(stack))
        report(stack, figures)
        return figures
    finally:
        stack.stop()


def main() -> None:
    print("## Tracing off")
    off = run(new_stack())
    receiver = Receiver()
    server = otlp_receiver.start(receiver)
    try:
        print("\n## Tracing on")
        on = run(
            new_stack(
                OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
                OTEL_TRACES_SAMPLER="always_on",
                OTEL_BSP_SCHEDULE_DELAY="500",
            )
        )
    finally:
        server.shutdown()
        server.server_close()
    tracing_overhead(off, on, len(receiver.spans))
    sys.stdout.flush()


if __name__ == "__main__":
    main()

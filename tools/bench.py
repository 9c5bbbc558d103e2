"""Benchmarks of a locally started system (loopback only, bounded in count).

    make bench

Starts the stack like `make run` (own broker, free ports, unique topics),
then measures chat-turn latency over REST and WebSocket (to ack, first
delta, reply), a concurrent WebSocket load, and each process's memory.
"""

import asyncio
import json
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import websockets

from devstack import Stack, free_port

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


async def measure(stack: Stack) -> None:
    base = f"http://127.0.0.1:{stack.gateway_port}"
    ws_base = f"ws://127.0.0.1:{stack.gateway_port}"
    await ws_turns(base, ws_base, 5)  # warm-up
    rest = await rest_turns(base)
    ws = await ws_turns(base, ws_base, SEQUENTIAL_TURNS)

    began = time.perf_counter()
    results = await asyncio.gather(*(ws_turns(base, ws_base, TURNS_PER_SESSION) for _ in range(CONCURRENT_SESSIONS)))
    elapsed = time.perf_counter() - began
    loaded = [t for r in results for t in r["reply"]]

    print("\n| measure (ms) | n | p50 | p95 | p99 |\n|---|---|---|---|---|")
    print(summary("REST turn (POST to JSON reply)", rest))
    print(summary("WS message to ack", ws["ack"]))
    print(summary("WS message to first delta", ws["first_delta"]))
    print(summary("WS message to reply", ws["reply"]))
    print(summary(f"WS reply, {CONCURRENT_SESSIONS} sessions at once", loaded))
    print(f"\nThroughput under load: {len(loaded) / elapsed:.1f} turns/s ({len(loaded)} turns in {elapsed:.1f} s)")
    print("\n| process | RSS (MiB) |\n|---|---|")
    for process in stack.processes:
        print(f"| {process.name} | {rss_mib(process.popen.pid):.0f} |")


def main() -> None:
    data = Path(".run") / f"bench-{uuid.uuid4().hex[:6]}"
    stack = Stack(
        gateway_port=free_port(),
        data_dir=data,
        ops_ports={"session": free_port(), "agent": free_port(), "ingest": free_port()},
        extra_env={
            "KAFKA_TOPIC_PREFIX": f"bench{uuid.uuid4().hex[:6]}",
            "REDIS_KEY_PREFIX": "bench",
            "LOG_LEVEL": "WARNING",
            # A load test from one address is not abuse.
            "RATE_LIMIT_ENABLED": "false",
        },
        log_dir=data / "logs",
    )
    began = time.perf_counter()
    stack.start()
    print(f"Stack ready in {time.perf_counter() - began:.1f} s")
    try:
        asyncio.run(measure(stack))
    finally:
        stack.stop()
    sys.stdout.flush()


if __name__ == "__main__":
    main()

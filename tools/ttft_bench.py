"""Time to first token over calling the LLM endpoint directly (performance goal 5).

    python tools/ttft_bench.py          # BENCH_TURNS=100, BENCH_TOKEN_DELAY=0.0035

A local OpenAI-compatible endpoint (tests/e2e/slow_llm.py) streams each word
after BENCH_TOKEN_DELAY seconds. In one run: its first token asked directly
with the openai client, one call at a time; then a system started as
`make run` does with OPENAI_BASE_URL pointing at it, one WebSocket session
asking one question at a time, timed from sending to the first `delta`
frame. What the system adds is the difference of the two at each
percentile (retrieval before the call, Kafka hops both ways, the gateway).
Loopback only, bounded by the number of turns.
"""

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import loadgen
import websockets
from openai import AsyncOpenAI

from bench import new_stack, question, started, ws_urls
from devstack import free_port, http_ok, stop_process, wait_for

ROOT = Path(__file__).resolve().parent.parent
TURNS = int(os.environ.get("BENCH_TURNS", "100"))
TOKEN_DELAY = float(os.environ.get("BENCH_TOKEN_DELAY", "0.0035"))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def direct(base_url: str, turns: int) -> list[float]:
    client = AsyncOpenAI(base_url=base_url, api_key="bench")
    firsts = []
    try:
        for n in range(turns):
            began = time.perf_counter()
            stream = await client.chat.completions.create(
                model="slow", messages=[{"role": "user", "content": question(n)}], stream=True
            )
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    firsts.append(time.perf_counter() - began)
                    break
            await stream.close()
    finally:
        await client.close()
    return firsts


async def through_system(url: str, turns: int) -> list[float]:
    """One turn at a time on one socket: the time to its first delta."""
    firsts: list[float] = []
    async with websockets.connect(url, user_agent_header=loadgen.USER_AGENT) as ws:
        for n in range(turns):
            message_id = str(uuid.uuid4())
            began = time.perf_counter()
            await ws.send(json.dumps({"type": "message", "content": question(n), "message_id": message_id}))
            async with asyncio.timeout(loadgen.REPLY_TIMEOUT_SECONDS):
                while True:
                    frame = json.loads(await ws.recv())
                    if frame.get("reply_to") != message_id:
                        continue
                    if frame.get("type") == "delta" and len(firsts) == n:
                        firsts.append(time.perf_counter() - began)
                    elif frame.get("type") in ("reply", "error"):
                        break
            if len(firsts) <= n:
                raise RuntimeError(f"turn {n} had no delta: {frame}")
    return firsts


def main() -> None:
    port = free_port()
    llm = subprocess.Popen([sys.executable, str(ROOT / "tests" / "e2e" / "slow_llm.py"), str(port), str(TOKEN_DELAY)])
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_for(lambda: http_ok(f"{base_url}/models"), 30, "the local LLM endpoint")
        asyncio.run(direct(base_url, 5))  # warm-up
        endpoint = asyncio.run(direct(base_url, TURNS))
        stack = started(new_stack(OPENAI_BASE_URL=base_url, OPENAI_API_KEY="bench", LLM_MODEL="slow"))
        try:
            [url] = ws_urls(stack, 1)
            asyncio.run(through_system(url, 5))  # warm-up
            system = asyncio.run(through_system(url, TURNS))
        finally:
            stack.stop()
    finally:
        stop_process(llm)
    print(f"\n### Time to first token, {TURNS} turns one at a time, first token after {TOKEN_DELAY * 1000:.1f} ms\n")
    print("| | p50 (ms) | p90 (ms) | p99 (ms) | mean (ms) |")
    print("|---|---|---|---|---|")
    for name, values in (("endpoint directly", endpoint), ("first delta at the WebSocket client", system)):
        print(
            f"| {name} | {pct(values, 0.5):.1f} | {pct(values, 0.9):.1f} | {pct(values, 0.99):.1f} | "
            f"{statistics.fmean(values) * 1000:.1f} |"
        )
    print(
        f"| added by the system | {pct(system, 0.5) - pct(endpoint, 0.5):.1f} | "
        f"{pct(system, 0.9) - pct(endpoint, 0.9):.1f} | {pct(system, 0.99) - pct(endpoint, 0.99):.1f} | "
        f"{(statistics.fmean(system) - statistics.fmean(endpoint)) * 1000:.1f} |"
    )
    print(f"\nTurns answered through the system: {len(system)} of {TURNS}")


if __name__ == "__main__":
    main()

"""A chat turn answered by a real LLM (llama.cpp's OpenAI-compatible server
with SmolLM2-135M): streamed over SSE, with the passages' sources."""

import httpx
import pytest

from devstack import Stack
from sse import read_events

pytestmark = pytest.mark.e2e


async def test_an_llm_answer_streams_with_sources(llm_stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{llm_stack.gateway_port}", timeout=120) as http:
        session = (await http.post("/api/v1/sessions", json={})).json()
        headers = {"Authorization": f"Bearer {session['token']}"}
        async with http.stream(
            "POST",
            f"/api/v1/sessions/{session['session_id']}/messages/stream",
            json={"content": "How long does standard shipping take?"},
            headers=headers,
        ) as stream:
            events = await read_events(stream)
    kinds = [e for e, _ in events]
    assert kinds[0] == "ack"
    assert kinds[-1] == "done", events[-1]
    assert kinds.count("delta") >= 2  # tokens coalesced every AGENT_DELTA_WINDOW_MS
    reply = events[-1][1]["reply"]
    text = reply["content"]
    assert text.strip()
    # Generated, not the extractive quote and not the outage fallback.
    assert not text.startswith("According to our")
    assert "temporarily unavailable" not in text
    assert reply["sources"][0]["title"] == "Shipping information"
    assert "".join(d["content"] for e, d in events if e == "delta").strip() == text

    async with httpx.AsyncClient(timeout=10) as client:
        diagnostics = (await client.get(f"http://127.0.0.1:{llm_stack.ops_ports['agent']}/health/diagnostics")).json()
    assert diagnostics["generator"] == {"mode": "llm", "model": "smollm2"}

"""The LLM path against a real OpenAI-compatible server, and against one that
accepts connections but never answers (a hung LLM)."""

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from openai import AsyncOpenAI

from supportdesk_agent.generators import LLM_FALLBACK_NOTE, ExtractiveGenerator, LlmGenerator
from supportdesk_contracts.events import HistoryTurn
from supportdesk_knowledge.index import Hit

pytestmark = pytest.mark.integration

SHIPPING = Hit("d-ship", "Shipping information", "Standard shipping takes 3-5 business days.", 0.71)


async def collect(pieces: AsyncIterator[str]) -> list[str]:
    return [p async for p in pieces]


async def test_answers_stream_from_a_real_llm(llm_base_url: str, embedder: Any) -> None:
    client = AsyncOpenAI(base_url=llm_base_url, api_key="not-needed")
    llm = LlmGenerator(
        client, "smollm2", ExtractiveGenerator(embedder), timeout_seconds=60, max_tokens=48, temperature=0
    )
    history = [HistoryTurn(role="user", content="Hi"), HistoryTurn(role="assistant", content="Hello! How can I help?")]
    pieces = await collect(llm.stream("How long does standard shipping take?", history, [SHIPPING]))
    text = "".join(pieces)
    assert len(pieces) > 3, "the answer must arrive token by token"
    assert text.strip()
    assert not text.startswith(LLM_FALLBACK_NOTE)
    await client.close()


async def test_with_nothing_relevant_the_llm_is_not_asked(llm_base_url: str, embedder: Any) -> None:
    client = AsyncOpenAI(base_url="http://127.0.0.1:9/v1", api_key="x", max_retries=0)  # would fail if called
    llm = LlmGenerator(
        client, "smollm2", ExtractiveGenerator(embedder), timeout_seconds=5, max_tokens=48, temperature=0
    )
    text = "".join(await collect(llm.stream("Do you sell bicycles?", [], [])))
    assert "couldn't find" in text
    await client.close()


async def test_a_hung_llm_falls_back_within_the_timeout(embedder: Any) -> None:
    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        await asyncio.sleep(30)
        writer.close()

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
    llm = LlmGenerator(client, "any", ExtractiveGenerator(embedder), timeout_seconds=1.0, max_tokens=48, temperature=0)
    began = time.perf_counter()
    text = "".join(await collect(llm.stream("How long does standard shipping take?", [], [SHIPPING])))
    assert time.perf_counter() - began < 5
    assert text.startswith(LLM_FALLBACK_NOTE)
    assert "3-5 business days" in text
    await client.close()
    server.close()

"""The LLM path against an OpenAI-compatible server scripted to fail: rate
limited and failing calls are retried a bounded number of times; a stream cut
mid-way says so; a hang ends at the timeout; after repeated failures the
circuit breaker answers from the passages at once, without calling, then
probes and closes again. Metrics count calls, latency and tokens."""

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from openai import AsyncOpenAI
from prometheus_client import CollectorRegistry

from scripted_llm import ScriptedLlm, serve
from supportdesk_agent.breaker import BreakerState, CircuitBreaker
from supportdesk_agent.generators import LLM_FALLBACK_NOTE, ExtractiveGenerator, LlmGenerator
from supportdesk_agent.metrics import AgentMetrics
from supportdesk_knowledge.index import Hit

SHIPPING = Hit("d-ship", "Shipping information", "Standard shipping takes 3-5 business days within the EU.", 0.71)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def llm() -> AsyncIterator[ScriptedLlm]:
    scripted = ScriptedLlm()
    server, task = await serve(scripted)
    yield scripted
    server.should_exit = True
    await task


@pytest.fixture
async def clients() -> AsyncIterator[list[AsyncOpenAI]]:
    made: list[AsyncOpenAI] = []
    yield made
    for client in made:
        await client.close()


def generator(
    llm: ScriptedLlm,
    embedder: Any,
    breaker: CircuitBreaker,
    metrics: AgentMetrics,
    clients: list[AsyncOpenAI],
    retries: int = 0,
    timeout: float = 30,
) -> LlmGenerator:
    client = AsyncOpenAI(base_url=llm.url, api_key="x", max_retries=retries)
    clients.append(client)
    return LlmGenerator(
        client,
        "scripted",
        ExtractiveGenerator(embedder),
        timeout_seconds=timeout,
        max_tokens=64,
        temperature=0,
        breaker=breaker,
        metrics=metrics,
    )


async def answer(llm: LlmGenerator) -> str:
    return "".join([piece async for piece in llm.stream("How long does shipping take?", [], [SHIPPING])])


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def test_rate_limits_and_server_errors_are_retried_a_bounded_number_of_times(
    llm: ScriptedLlm, embedder: Any, clients: list[AsyncOpenAI]
) -> None:
    llm.script = ["429", "500"]
    registry = CollectorRegistry()
    metrics = AgentMetrics(registry)
    text = await answer(generator(llm, embedder, CircuitBreaker(5, 30), metrics, clients, retries=2))
    assert text == llm.answer
    assert len(llm.requests) == 3
    llm.script = ["500", "500", "500"]
    text = await answer(generator(llm, embedder, CircuitBreaker(5, 30), metrics, clients, retries=2))
    assert text.startswith(LLM_FALLBACK_NOTE.strip())
    assert len(llm.requests) == 6  # 1 + 2 retries, no more
    assert sample(registry, "supportdesk_agent_llm_calls_total", outcome="ok") == 1
    assert sample(registry, "supportdesk_agent_llm_calls_total", outcome="failed") == 1


async def test_a_stream_cut_mid_way_says_so(llm: ScriptedLlm, embedder: Any, clients: list[AsyncOpenAI]) -> None:
    llm.script = ["cut"]
    text = await answer(generator(llm, embedder, CircuitBreaker(5, 30), AgentMetrics(CollectorRegistry()), clients))
    assert text.startswith("Standard shipping")
    # Cut short, and then answered from the passages: the user still gets the fact (found by the fault suite).
    cut, rest = text.split("(The answer was cut short.)")
    assert "3-5 business days" not in cut
    assert rest.strip().startswith(LLM_FALLBACK_NOTE.strip())
    assert "3-5 business days" in rest


async def test_a_hang_ends_at_the_timeout_with_the_passages(
    llm: ScriptedLlm, embedder: Any, clients: list[AsyncOpenAI]
) -> None:
    llm.script = ["hang"]
    text = await answer(
        generator(llm, embedder, CircuitBreaker(5, 30), AgentMetrics(CollectorRegistry()), clients, timeout=1.5)
    )
    assert text.startswith(LLM_FALLBACK_NOTE.strip())
    assert "3-5 business days" in text


async def test_the_breaker_stops_calling_a_failing_endpoint_then_probes_it(
    llm: ScriptedLlm, embedder: Any, clients: list[AsyncOpenAI]
) -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=3, cooldown_seconds=30, clock=clock)
    registry = CollectorRegistry()
    llm.then = "500"
    generate = generator(llm, embedder, breaker, AgentMetrics(registry), clients)
    for _ in range(3):
        assert (await answer(generate)).startswith(LLM_FALLBACK_NOTE.strip())
    assert breaker.state is BreakerState.OPEN
    calls = len(llm.requests)
    for _ in range(5):  # open: answered from the passages, the endpoint is not called
        assert "3-5 business days" in await answer(generate)
    assert len(llm.requests) == calls
    assert sample(registry, "supportdesk_agent_llm_calls_total", outcome="skipped") == 5
    assert sample(registry, "supportdesk_agent_llm_breaker_open") == 1

    clock.now += 31  # the cool-down is over: one probe, which fails, reopens it
    await answer(generate)
    assert len(llm.requests) == calls + 1
    assert breaker.state is BreakerState.OPEN

    clock.now += 31
    llm.then = "answer"
    assert await answer(generate) == llm.answer  # the probe succeeds: closed
    assert breaker.state is BreakerState.CLOSED
    assert sample(registry, "supportdesk_agent_llm_breaker_open") == 0
    assert sample(registry, "supportdesk_agent_llm_tokens_total", kind="completion") > 0
    assert sample(registry, "supportdesk_agent_llm_seconds_count") >= 1


async def test_what_the_model_is_sent(llm: ScriptedLlm, embedder: Any, clients: list[AsyncOpenAI]) -> None:
    await answer(generator(llm, embedder, CircuitBreaker(5, 30), AgentMetrics(CollectorRegistry()), clients))
    [request] = llm.requests
    system, question = request["messages"][0], request["messages"][-1]
    assert system["role"] == "system"
    assert "3-5 business days" in system["content"]
    assert question == {"role": "user", "content": "How long does shipping take?"}
    assert request["stream"] is True


async def test_time_to_first_token_is_measured(llm: ScriptedLlm, embedder: Any, clients: list[AsyncOpenAI]) -> None:
    """From the call to the model's first token: a model that thinks for
    0.3 s before it answers shows 0.3 s, whatever the stream takes after."""
    llm.slow_when, llm.slow_seconds, llm.word_seconds = "shipping", 0.3, 0.05
    registry = CollectorRegistry()
    began = time.perf_counter()
    assert await answer(generator(llm, embedder, CircuitBreaker(5, 30), AgentMetrics(registry), clients)) == llm.answer
    whole = time.perf_counter() - began
    first = sample(registry, "supportdesk_agent_llm_first_token_seconds_sum")
    assert sample(registry, "supportdesk_agent_llm_first_token_seconds_count") == 1
    assert 0.3 <= first < whole - 0.2  # the five later words took 0.25 s more
    assert sample(registry, "supportdesk_agent_llm_seconds_sum") >= first + 0.2  # to its last token

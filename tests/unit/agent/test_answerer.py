"""Answering turns with the real embedding model; retrieval is a fixed list
of passages so each case controls what the knowledge base 'knows'."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from cryptography.fernet import Fernet
from openai import AsyncOpenAI
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from devstack import free_port
from supportdesk_agent.answerer import HANDOFF, DeltaGrain, EchoAnswerer, RetrievalOptions, TurnAnswerer
from supportdesk_agent.escalation import EscalationPolicy
from supportdesk_agent.generators import LLM_FALLBACK_NOTE, NO_ANSWER, ExtractiveGenerator, LlmGenerator
from supportdesk_agent.metrics import AgentMetrics
from supportdesk_agent.settings import DEFAULT_ESCALATION_KEYWORDS, AgentSettings
from supportdesk_contracts.events import HistoryTurn, ReplyCompleted, ReplyDeltaProduced, TurnRequested
from supportdesk_knowledge.index import Hit

SHIPPING = Hit(
    "d-ship",
    "Shipping information",
    "Standard shipping takes 3-5 business days. Express shipping takes 1-2 business days.",
    0.71,
)
REFUNDS = Hit("d-refund", "Refund policy", "Full refunds are available within 30 days of purchase.", 0.42)


class Recorder:
    """Records what is published. Like the real publisher, an unconfirmed send
    returns a confirmation that completes later."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.unconfirmed: list[asyncio.Future[None]] = []

    async def publish(self, message: Any, *, key: bytes | None = None, no_confirm: bool = False) -> Any:
        self.events.append(message)
        if not no_confirm:
            return None
        confirmation: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.01, confirmation.set_result, None)
        self.unconfirmed.append(confirmation)
        return confirmation


class CompletionWatcher(Recorder):
    """Checks, when the reply completes, that every delta was confirmed."""

    def __init__(self, outbound: Recorder) -> None:
        super().__init__()
        self.outbound = outbound
        self.deltas_confirmed_first: bool | None = None

    async def publish(self, message: Any, *, key: bytes | None = None, no_confirm: bool = False) -> Any:
        self.deltas_confirmed_first = all(f.done() for f in self.outbound.unconfirmed)
        return await super().publish(message, key=key, no_confirm=no_confirm)


class Passages:
    """Returns the passages whose text shares a word with the query."""

    def __init__(self, *hits: Hit) -> None:
        self.hits = hits
        self.queries: list[str] = []

    async def search(self, query: str, limit: int, min_score: float, private: object = ()) -> list[Hit]:
        self.queries.append(query)
        words = {w.strip("?.,!").lower() for w in query.split()}
        return [h for h in self.hits if words & {w.strip(".,").lower() for w in h.text.split()}][:limit]


def answerer(retriever: Passages, generator: Any, outbound: Recorder, inbound: Recorder) -> TurnAnswerer:
    return TurnAnswerer(
        retriever=retriever,
        generator=generator,
        escalation=EscalationPolicy(DEFAULT_ESCALATION_KEYWORDS, 0.9),
        retrieval=RetrievalOptions(search_k=4, min_score=0.35, relative_margin=0.15),
        escalate_on_no_answer=True,
        deltas=outbound,
        completions=inbound,
        metrics=AgentMetrics(CollectorRegistry()),
    )


def turn(content: str, history: list[HistoryTurn] | None = None) -> TurnRequested:
    return TurnRequested(session_id="s1", message_id="m1", content=content, history=history or [])


@pytest.fixture
def extractive(embedder: Any) -> ExtractiveGenerator:
    return ExtractiveGenerator(embedder)


async def test_answer_quotes_the_relevant_sentence_streams_it_and_cites_it(extractive: ExtractiveGenerator) -> None:
    outbound, inbound = Recorder(), Recorder()
    await answerer(Passages(SHIPPING, REFUNDS), extractive, outbound, inbound).answer(
        turn("How long does standard shipping take?")
    )
    [completed] = inbound.events
    assert isinstance(completed, ReplyCompleted)
    assert "Standard shipping takes 3-5 business days." in completed.reply.content
    assert [s.title for s in completed.reply.sources] == ["Shipping information"]
    assert completed.reply.confidence == pytest.approx(0.71)
    assert not completed.reply.escalated
    deltas = [e for e in outbound.events if isinstance(e, ReplyDeltaProduced)]
    # The first word at once, the rest (known at the same moment) together.
    assert deltas[0].content == "According "
    assert len(deltas) == 2
    assert "".join(d.content for d in deltas).strip() == completed.reply.content
    assert [d.index for d in deltas] == list(range(len(deltas)))


async def test_every_delta_is_confirmed_before_the_reply_completes(extractive: ExtractiveGenerator) -> None:
    outbound = Recorder()
    inbound = CompletionWatcher(outbound)
    await answerer(Passages(SHIPPING), extractive, outbound, inbound).answer(turn("shipping days?"))
    assert len(outbound.unconfirmed) >= 2
    assert inbound.deltas_confirmed_first is True


class Paced:
    """A generator that yields its pieces with pauses, as an LLM does."""

    def __init__(self, *timed: tuple[float, str]) -> None:
        self.timed = timed

    async def stream(self, question: str, history: list[HistoryTurn], hits: list[Hit]) -> AsyncIterator[str]:
        for pause, piece in self.timed:
            await asyncio.sleep(pause)
            yield piece


async def test_pieces_are_coalesced_into_deltas_by_time_and_size() -> None:
    """The first piece goes out alone and at once; pieces close together go
    out as one delta; a pause longer than the window ends a delta; a long
    run is cut at the size limit; nothing is lost or reordered."""
    outbound, inbound = Recorder(), Recorder()
    timed = [(0, "Standard "), (0, "shipping "), (0.001, "takes "), (0.08, "3-5 "), (0, "business "), (0.08, "days.")]
    generator = Paced(*timed, *[(0, "x" * 30)] * 20)
    answering = answerer(Passages(SHIPPING), generator, outbound, inbound)
    answering.grain = DeltaGrain(window_seconds=0.03, max_chars=200)
    await answering.answer(turn("How long does shipping take?"))
    deltas = [e.content for e in outbound.events if isinstance(e, ReplyDeltaProduced)]
    assert deltas[:4] == ["Standard ", "shipping takes ", "3-5 business ", "days." + "x" * 210]
    assert all(len(d) <= 215 for d in deltas)  # cut once 200 wait
    assert "".join(deltas) == "".join(piece for _, piece in generator.timed)
    [completed] = inbound.events
    assert completed.reply.content == "".join(deltas).strip()


async def test_without_relevant_knowledge_it_says_so_and_escalates(extractive: ExtractiveGenerator) -> None:
    inbound = Recorder()
    await answerer(Passages(SHIPPING), extractive, Recorder(), inbound).answer(turn("Do you sell bicycles?"))
    [completed] = inbound.events
    assert completed.reply.content.startswith(NO_ANSWER)
    assert completed.reply.sources == []
    assert completed.reply.confidence == 0.0
    assert completed.reply.escalated
    assert completed.escalation_reason == "no relevant knowledge"


async def test_a_follow_up_is_understood_through_the_conversation(extractive: ExtractiveGenerator) -> None:
    retriever = Passages(SHIPPING)
    inbound = Recorder()
    history = [
        HistoryTurn(role="user", content="How long does shipping take?"),
        HistoryTurn(role="assistant", content="3-5 days."),
    ]
    await answerer(retriever, extractive, Recorder(), inbound).answer(turn("And express?", history))
    # The new topic alone, then in the previous question's frame (followups.py).
    assert retriever.queries == ["express", "How long does shipping take? express"]
    reply = inbound.events[0].reply
    assert [s.title for s in reply.sources] == ["Shipping information"]
    assert not reply.escalated


async def test_asking_for_a_human_hands_over(extractive: ExtractiveGenerator) -> None:
    retriever = Passages(SHIPPING)
    inbound = Recorder()
    await answerer(retriever, extractive, Recorder(), inbound).answer(turn("Let me talk to a real person"))
    [completed] = inbound.events
    assert completed.reply.content == HANDOFF
    assert completed.reply.escalated
    assert retriever.queries == []


async def test_only_passages_near_the_best_are_cited(extractive: ExtractiveGenerator) -> None:
    inbound = Recorder()
    weak = Hit("d-weak", "Return process", "Ship items back within 30 days.", 0.45)
    await answerer(Passages(SHIPPING, weak), extractive, Recorder(), inbound).answer(turn("shipping days?"))
    assert [s.title for s in inbound.events[0].reply.sources] == ["Shipping information"]


async def test_a_redelivered_turn_gets_the_same_reply_id(extractive: ExtractiveGenerator) -> None:
    inbound = Recorder()
    agent = answerer(Passages(SHIPPING), extractive, Recorder(), inbound)
    await agent.answer(turn("shipping time?"))
    await agent.answer(turn("shipping time?"))
    assert inbound.events[0].reply.id == inbound.events[1].reply.id


async def test_an_llm_outage_falls_back_to_the_passages_quickly(extractive: ExtractiveGenerator) -> None:
    # A real client against a port where nothing listens: connection refused.
    client = AsyncOpenAI(base_url=f"http://127.0.0.1:{free_port()}/v1", api_key="x", max_retries=0)
    llm = LlmGenerator(client, "any", extractive, timeout_seconds=5, max_tokens=64, temperature=0)
    inbound = Recorder()
    await answerer(Passages(SHIPPING), llm, Recorder(), inbound).answer(turn("How long does standard shipping take?"))
    content = inbound.events[0].reply.content
    assert content.startswith(LLM_FALLBACK_NOTE.strip())
    assert "3-5 business days" in content
    await client.close()


async def test_the_echo_answerer_says_the_message_back_without_knowledge() -> None:
    """AGENT_ANSWERER=echo, the transport benchmark's: a delta and a reply
    like any answer's, with the message itself and no sources."""
    outbound, inbound = Recorder(), Recorder()
    await EchoAnswerer(outbound, inbound).answer(turn("ping 42"))
    [delta] = [e for e in outbound.events if isinstance(e, ReplyDeltaProduced)]
    [completed] = inbound.events
    assert (delta.content, delta.reply_to, delta.correlation_id) == ("ping 42", "m1", None)
    assert (completed.reply.content, completed.reply.sources, completed.reply_to) == ("ping 42", [], "m1")


class Failing(Paced):
    """Streams its pieces, then breaks (a model that fails mid-answer)."""

    async def stream(self, question: str, history: list[HistoryTurn], hits: list[Hit]) -> AsyncIterator[str]:
        async for piece in super().stream(question, history, hits):
            yield piece
        raise RuntimeError("the model broke mid-answer")


async def test_nothing_of_a_failed_turn_is_published_after_it_failed() -> None:
    """Pieces waiting for their delta when the turn fails are dropped, not
    sent after the error the client is about to get."""
    outbound, inbound = Recorder(), Recorder()
    answering = answerer(
        Passages(SHIPPING), Failing((0, "Standard "), (0, "shipping "), (0, "takes")), outbound, inbound
    )
    with pytest.raises(RuntimeError):
        await answering.answer(turn("How long does shipping take?"))
    published = len(outbound.events)
    await asyncio.sleep(0.1)  # past the delta window
    assert len(outbound.events) == published == 1  # the first piece only
    assert inbound.events == []


def test_the_echo_answerer_is_refused_in_production() -> None:
    key = Fernet.generate_key().decode()
    with pytest.raises(ValidationError, match="AGENT_ANSWERER=echo"):
        AgentSettings(AGENT_ANSWERER="echo", environment="production", SESSION_ENCRYPTION_KEYS=key)
    assert AgentSettings(AGENT_ANSWERER="echo").answerer == "echo"


FREIGHT = Hit(
    "d-ship",
    "Shipping",
    "Kayaks, canoes and paddleboards are delivered curbside by a freight carrier, who calls you to book a "
    "four-hour delivery appointment. Ground shipping takes 8-12 business days and costs a $65 flat freight fee.",
    0.6,
    section="Ground shipping for oversized items",
)


@pytest.mark.parametrize(
    ("question", "fact"),
    [
        ("I'm ordering a kayak. How many days will delivery take?", "8-12 business days"),
        ("How much does freight delivery of a canoe cost?", "$65"),
    ],
)
async def test_the_sentence_with_the_kind_of_value_asked_for_answers(embedder: Any, question: str, fact: str) -> None:
    # The kayak sentence is the more similar one, and holds no number of
    # days or price; the answer is the sentence that does.
    answer = await ExtractiveGenerator(embedder, max_units=1).compose(question, [FREIGHT])
    assert fact in answer
    untyped = await ExtractiveGenerator(embedder, max_units=1, type_weight=0.0).compose(question, [FREIGHT])
    assert fact not in untyped, "the case no longer tells the type check apart"


async def test_a_list_item_is_quoted_with_its_lead_in(embedder: Any) -> None:
    final_sale = Hit(
        "d-returns",
        "Returns",
        "For health and safety reasons, these items are final sale and cannot be returned:\n"
        "- opened stove fuel canisters and opened bear spray;\n"
        "- climbing rope cut to length.",
        0.6,
    )
    answer = await ExtractiveGenerator(embedder, max_units=1).compose("Can I return opened bear spray?", [final_sale])
    assert "these items are final sale and cannot be returned: opened stove fuel canisters and opened bear spray." in (
        answer
    )

"""Kafka subscriber of the agent: the agent.turns topic, answered
concurrently across sessions and in order within one (dispatch.py)."""

import asyncio
import logging
from dataclasses import dataclass

from faststream.kafka import KafkaRouter
from prometheus_client import CollectorRegistry
from pydantic import TypeAdapter

from supportdesk_agent.answerer import Answerer, DeltaGrain, EchoAnswerer, Retriever, TurnAnswerer
from supportdesk_agent.budget import LlmBudget
from supportdesk_agent.escalation import EscalationPolicy
from supportdesk_agent.generators import Generator
from supportdesk_agent.memory import Condenser
from supportdesk_agent.metrics import AgentMetrics
from supportdesk_agent.rewriting import LlmRewriter
from supportdesk_agent.settings import AgentSettings
from supportdesk_contracts.events import TurnFailed, TurnRequested
from supportdesk_platform.dispatch import Key, KeyedDispatcher
from supportdesk_platform.kafka import TRANSIENT_ERRORS, DeadLetters, RetryPolicy, key_of, subscribe_keyed
from supportdesk_sessions.answers import FinishedAnswers
from supportdesk_sessions.attachments import SessionAttachments

log = logging.getLogger(__name__)
_TURN = TypeAdapter(TurnRequested)


@dataclass
class TurnRouter:
    router: KafkaRouter
    dispatcher: KeyedDispatcher


def build_router(
    settings: AgentSettings,
    retriever: Retriever,
    generator: Generator,
    metrics: AgentMetrics,
    budget: LlmBudget | None = None,
    within_budget: Generator | None = None,
    condenser: Condenser | None = None,
    rewriter: LlmRewriter | None = None,
    attachments: SessionAttachments | None = None,
    answers: FinishedAnswers | None = None,
    registry: CollectorRegistry | None = None,
) -> TurnRouter:
    topics = settings.topics
    router = KafkaRouter()
    # Deltas go straight to the clients; the completed reply goes back to the
    # session worker, which records it before anyone sees it.
    deltas = router.publisher(topics.chat_outbound, title="agent:deltas")
    grain = DeltaGrain(settings.delta_window_ms / 1000, settings.delta_max_chars)
    completions = router.publisher(topics.chat_inbound, title="agent:completions")
    answerer: Answerer = TurnAnswerer(
        retriever=retriever,
        generator=generator,
        escalation=EscalationPolicy(
            settings.escalation_keywords, settings.escalation_keyword_threshold, settings.escalation_enabled
        ),
        retrieval=settings.retrieval,
        escalate_on_no_answer=settings.escalation_on_no_answer,
        deltas=deltas,
        completions=completions,
        metrics=metrics,
        budget=budget,
        within_budget=within_budget,
        condenser=condenser,
        rewriter=rewriter,
        attachments=attachments,
        answers=answers,
        grain=grain,
    )
    if settings.answerer == "echo":
        log.warning("AGENT_ANSWERER=echo: every message is said back, nothing is answered (a benchmark setting)")
        answerer = EchoAnswerer(deltas, completions, grain)

    async def turn_failed(turn: TurnRequested, code: str, message: str) -> None:
        failed = TurnFailed(**turn.caused(), reply_to=turn.message_id, code=code, message=message)
        await deltas.publish(failed, key=key_of(turn.session_id))

    async def given_up(turn: object, reason: str) -> None:
        if isinstance(turn, TurnRequested):
            await turn_failed(
                turn, "unavailable", "The assistant could not answer: a service it needs is unavailable. Please retry."
            )

    dead_letters = DeadLetters(
        router.publisher(topics.dead_letters, title="agent:deadletter"),
        "agent",
        RetryPolicy.of(settings),
        given_up,
        registry,
    )

    interrupting = settings.double_text == "interrupt"
    # The turn being answered per session, to cut short when a newer one comes.
    running: dict[str, asyncio.Event] = {}

    def on_queued(key: Key) -> None:
        if interrupting and key is not None and (superseded := running.get(key.decode(errors="replace"))):
            superseded.set()

    async def answer(turn: TurnRequested) -> None:
        superseded = asyncio.Event()
        if interrupting and dispatcher.waiting(key_of(turn.session_id)):
            superseded.set()  # a newer message already waits: only the newest is answered
        running[turn.session_id] = superseded
        try:
            await answerer.answer(turn, superseded)
        except TRANSIENT_ERRORS:
            raise
        # Deliberately broad, and re-raised: whatever broke this turn, the
        # client waiting for it gets an error frame instead of silence.
        except Exception:
            await turn_failed(turn, "agent_failed", "The assistant could not answer this message.")
            raise
        finally:
            running.pop(turn.session_id, None)

    dispatcher = subscribe_keyed(
        router,
        settings,
        topic=topics.agent_turns,
        group_id=settings.consumer_group,
        title="agent:turns",
        adapter=_TURN,
        dead_letters=dead_letters,
        handler=answer,
        max_in_flight=settings.concurrency,
        on_queued=on_queued,
    )
    return TurnRouter(router, dispatcher)

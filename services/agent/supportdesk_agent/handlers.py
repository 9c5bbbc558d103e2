"""Kafka subscriber of the agent: the agent.turns topic."""

from faststream.kafka import KafkaRouter
from pydantic import TypeAdapter

from supportdesk_agent.answerer import Retriever, TurnAnswerer
from supportdesk_agent.budget import LlmBudget
from supportdesk_agent.escalation import EscalationPolicy
from supportdesk_agent.generators import Generator
from supportdesk_agent.metrics import AgentMetrics
from supportdesk_agent.settings import AgentSettings
from supportdesk_contracts.events import TurnFailed, TurnRequested
from supportdesk_platform.kafka import TRANSIENT_ERRORS, DeadLetters, key_of, subscribe_events

_TURN = TypeAdapter(TurnRequested)


def build_router(
    settings: AgentSettings,
    retriever: Retriever,
    generator: Generator,
    metrics: AgentMetrics,
    budget: LlmBudget | None = None,
    within_budget: Generator | None = None,
) -> KafkaRouter:
    topics = settings.topics
    router = KafkaRouter()
    # Deltas go straight to the clients; the completed reply goes back to the
    # session worker, which records it before anyone sees it.
    deltas = router.publisher(topics.chat_outbound, title="agent:deltas")
    answerer = TurnAnswerer(
        retriever=retriever,
        generator=generator,
        escalation=EscalationPolicy(
            settings.escalation_keywords, settings.escalation_keyword_threshold, settings.escalation_enabled
        ),
        retrieval=settings.retrieval,
        escalate_on_no_answer=settings.escalation_on_no_answer,
        deltas=deltas,
        completions=router.publisher(topics.chat_inbound, title="agent:completions"),
        metrics=metrics,
        budget=budget,
        within_budget=within_budget,
    )
    dead_letters = DeadLetters(router.publisher(topics.dead_letters, title="agent:deadletter"), "agent")

    async def answer(turn: TurnRequested) -> None:
        try:
            await answerer.answer(turn)
        except TRANSIENT_ERRORS:
            raise
        # Deliberately broad, and re-raised: whatever broke this turn, the
        # client waiting for it gets an error frame instead of silence.
        except Exception:
            await deltas.publish(
                TurnFailed(
                    **turn.caused(),
                    reply_to=turn.message_id,
                    code="agent_failed",
                    message="The assistant could not answer this message.",
                ),
                key=key_of(turn.session_id),
            )
            raise

    subscribe_events(
        router,
        settings,
        topic=topics.agent_turns,
        group_id=settings.consumer_group,
        title="agent:turns",
        adapter=_TURN,
        dead_letters=dead_letters,
        handler=answer,
    )
    return router

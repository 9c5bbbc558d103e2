"""Answering one turn: escalation check, retrieval (with the conversation as
context), streamed generation, and the completed reply."""

import asyncio
import time
import uuid
from collections.abc import Awaitable, Sequence
from typing import Any, Protocol

from supportdesk_agent.answering import Generator, pieces
from supportdesk_agent.escalation import EscalationPolicy
from supportdesk_agent.metrics import AgentMetrics
from supportdesk_contracts.events import (
    Reply,
    ReplyCompleted,
    ReplyDeltaProduced,
    Source,
    TurnRequested,
)
from supportdesk_knowledge.index import Hit
from supportdesk_platform.kafka import Publisher, key_of

HANDOFF = "I'm connecting you with a human agent. Someone from our team will reply here shortly."
ESCALATION_NOTE = "I've also asked a human colleague to look at this conversation."
_REPLY_NAMESPACE = uuid.UUID("0b0f4c1e-57a2-4bb9-9d55-3f1e6f0f2a90")
SNIPPET_CHARS = 300


class Retriever(Protocol):
    async def search(self, query: str, limit: int, min_score: float) -> list[Hit]: ...


def reply_id_for(session_id: str, message_id: str) -> str:
    """Deterministic, so a re-delivered turn produces the same reply id."""
    return str(uuid.uuid5(_REPLY_NAMESPACE, f"{session_id}:{message_id}"))


def sources_of(hits: Sequence[Hit]) -> list[Source]:
    seen: set[str] = set()
    sources = []
    for hit in hits:
        if hit.document_id in seen:
            continue
        seen.add(hit.document_id)
        sources.append(
            Source(
                document_id=hit.document_id,
                title=hit.title,
                snippet=hit.text[:SNIPPET_CHARS],
                score=round(hit.score, 4),
            )
        )
    return sources


class TurnAnswerer:
    def __init__(
        self,
        retriever: Retriever,
        generator: Generator,
        policy: EscalationPolicy,
        outbound: Publisher,
        inbound: Publisher,
        search_k: int,
        min_score: float,
        relative_margin: float,
        escalate_on_no_answer: bool,
        metrics: AgentMetrics,
    ) -> None:
        self.retriever = retriever
        self.generator = generator
        self.policy = policy
        self.outbound = outbound
        self.inbound = inbound
        self.search_k = search_k
        self.min_score = min_score
        self.relative_margin = relative_margin
        self.escalate_on_no_answer = escalate_on_no_answer
        self.metrics = metrics

    async def retrieve(self, turn: TurnRequested) -> list[Hit]:
        hits = await self.retriever.search(turn.content, self.search_k, self.min_score)
        previous = [t.content for t in turn.history if t.role == "user"]
        if not hits and previous:
            # A follow-up ("and express?") only makes sense with the question before it.
            hits = await self.retriever.search(f"{previous[-1]} {turn.content}", self.search_k, self.min_score)
        # Passages far below the best one are noise: neither used nor cited.
        return [h for h in hits if h.score >= hits[0].score - self.relative_margin] if hits else []

    async def answer(self, turn: TurnRequested) -> None:
        began = time.perf_counter()
        key = key_of(turn.session_id)
        verdict = self.policy.assess(turn.content)
        index = 0
        parts: list[str] = []
        confirmations: list[Awaitable[Any]] = []

        async def emit(piece: str) -> None:
            nonlocal index
            parts.append(piece)
            # Pieces are sent without waiting for each acknowledgement (one
            # producer and one partition keep them in order) ...
            confirmation = await self.outbound.publish(
                ReplyDeltaProduced(**turn.caused(), reply_to=turn.message_id, index=index, content=piece),
                key=key,
                no_confirm=True,
            )
            if confirmation is not None:
                confirmations.append(confirmation)
            index += 1

        hits: list[Hit] = []
        if verdict.human_requested:
            for piece in pieces(HANDOFF):
                await emit(piece)
        else:
            hits = await self.retrieve(turn)
            async for piece in self.generator.stream(turn.content, turn.history, hits):
                await emit(piece)
        reason = verdict.reason
        if reason is None and not hits and self.escalate_on_no_answer and self.policy.enabled:
            reason = "no relevant knowledge"
        if reason is not None and not verdict.human_requested:
            for piece in pieces(f"\n\n{ESCALATION_NOTE}"):
                await emit(piece)
        reply = Reply(
            id=reply_id_for(turn.session_id, turn.message_id),
            content="".join(parts).strip(),
            sources=sources_of(hits),
            confidence=round(hits[0].score, 4) if hits else (1.0 if verdict.human_requested else 0.0),
            escalated=reason is not None,
        )
        # ... but all of them are on the broker before the reply completes:
        # the completion travels another topic, and a client must never see
        # a delta after the reply it belongs to.
        await asyncio.gather(*confirmations)
        await self.inbound.publish(
            ReplyCompleted(**turn.caused(), reply_to=turn.message_id, reply=reply, escalation_reason=reason), key=key
        )
        outcome = "handoff" if verdict.human_requested else "answered" if hits else "no_answer"
        self.metrics.answers.labels(outcome).inc()
        if reply.escalated:
            self.metrics.escalations.inc()
        self.metrics.answer_seconds.observe(time.perf_counter() - began)

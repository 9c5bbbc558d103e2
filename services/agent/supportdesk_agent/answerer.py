"""Answering one turn: escalation check, retrieval (with the conversation as
context), streamed generation, and the completed reply."""

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from supportdesk_agent.budget import LlmBudget, estimated_tokens
from supportdesk_agent.escalation import EscalationPolicy, Verdict
from supportdesk_agent.followups import FollowUp, Shape, classify, keeps_topic
from supportdesk_agent.generators import Generator, cited, pieces
from supportdesk_agent.memory import Condenser
from supportdesk_agent.metrics import AgentMetrics
from supportdesk_agent.rewriting import LlmRewriter
from supportdesk_contracts.events import (
    HistoryTurn,
    MemoryCondensed,
    Reply,
    ReplyCompleted,
    ReplyDeltaProduced,
    Source,
    TurnRequested,
)
from supportdesk_knowledge.chunking import answer_units
from supportdesk_knowledge.index import Hit
from supportdesk_knowledge.private import PrivatePassage
from supportdesk_platform.kafka import Publisher, key_of
from supportdesk_sessions.answers import FinishedAnswers
from supportdesk_sessions.attachments import SessionAttachments

log = logging.getLogger(__name__)

HANDOFF = "I'm connecting you with a human agent. Someone from our team will reply here shortly."
ESCALATION_NOTE = "I've also asked a human colleague to look at this conversation."
_REPLY_NAMESPACE = uuid.UUID("0b0f4c1e-57a2-4bb9-9d55-3f1e6f0f2a90")
SNIPPET_CHARS = 300
# A new topic in a follow-up ("and what about returns?") names it in a word or
# two, which match their passage less closely than a whole question would:
# passages this close to the best match of the topic count as about it.
TOPIC_MARGIN = 0.1
TOPIC_FLOOR = 0.2


class Retriever(Protocol):
    async def search(
        self, query: str, limit: int, min_score: float, private: Sequence[PrivatePassage] = ()
    ) -> list[Hit]: ...


Search = Callable[[str, int, float], Awaitable[list[Hit]]]


MIN_QUOTE_CHARS = 12
"""A shorter unit ("Yes.") found in an answer is no sign that it was quoted."""


@dataclass(frozen=True)
class RetrievalOptions:
    search_k: int = 4
    min_score: float = 0.35
    """Passages scoring below this are not relevant."""
    relative_margin: float = 0.15
    """Passages further than this below the best one are neither used nor cited."""


def reply_id_for(session_id: str, message_id: str) -> str:
    """Deterministic, so a re-delivered turn produces the same reply id."""
    return str(uuid.uuid5(_REPLY_NAMESPACE, f"{session_id}:{message_id}"))


def _quoted_first(hits: Sequence[Hit], answer: str) -> dict[str, int]:
    """Where in the answer each document is first quoted (the extractive
    answer quotes its units word for word), by document id."""
    first: dict[str, int] = {}
    for hit in hits:
        for unit in answer_units(hit.text):
            core = unit.text.removeprefix("- ").rstrip(";,. ")
            if len(core) >= MIN_QUOTE_CHARS and (at := answer.find(core)) >= 0:
                first[hit.document_id] = min(at, first.get(hit.document_id, at))
    return first


def sources_of(hits: Sequence[Hit], answer: str = "") -> list[Source]:
    """One source per document, numbered as the model was shown them
    (`quoted_passages`). An answer that cites passages ("[2]") lists the
    cited ones, in order of use; one that quotes them (the extractive
    answer) the quoted ones, in order of use; one that does neither lists
    them all."""
    seen: set[str] = set()
    sources: list[Source] = []
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
                ref=len(sources) + 1,
                attachment=hit.attachment,
                url=hit.url,
                metadata=hit.metadata,
            )
        )
    used = cited(answer, len(sources))
    if used:
        return [sources[number - 1] for number in used]
    quoted = _quoted_first(hits, answer)
    return sorted((s for s in sources if s.document_id in quoted), key=lambda s: quoted[s.document_id]) or sources


@dataclass(frozen=True)
class DeltaGrain:
    """How a reply's pieces are grouped into delta events. The first piece
    goes out at once (the user sees the answer begin as soon as it does);
    later ones are sent together every `window_seconds`, or as soon as
    `max_chars` wait: one Kafka message per word is the wrong grain (an
    extractive answer is known whole at once, an LLM yields a token every few
    milliseconds), and each message costs every hop to the socket."""

    window_seconds: float = 0.02
    max_chars: int = 400


class DeltaStream:
    """Publishes a reply's pieces as coalesced deltas and keeps the text.

    Deltas are sent without waiting for each acknowledgement (one producer and
    one partition keep them in order; one flush at a time numbers them), but
    `confirmed()` sends what waits and waits for all of them: the completion
    travels another topic, and a client must never see a delta after the
    reply it belongs to. A turn that fails calls `abandon()` before it says
    so: nothing of it is published after its error."""

    def __init__(self, turn: TurnRequested, deltas: Publisher, grain: DeltaGrain | None = None) -> None:
        self.turn = turn
        self.deltas = deltas
        self.grain = grain or DeltaGrain()
        self.parts: list[str] = []
        self._waiting: list[str] = []
        self._waiting_chars = 0
        self._sent = 0
        self._flushing = asyncio.Lock()
        self._timer: asyncio.Task[None] | None = None
        # Every flush runs as a task of its own: a turn cut short (a newer
        # message, a drain) must not cancel a publish half-way, and its
        # errors must reach `confirmed()`.
        self._flushes: list[asyncio.Task[None]] = []
        self._confirmations: list[Awaitable[Any]] = []

    async def emit(self, piece: str) -> None:
        self.parts.append(piece)
        self._waiting.append(piece)
        self._waiting_chars += len(piece)
        if self._sent == 0 or self._waiting_chars >= self.grain.max_chars:
            await asyncio.shield(self._flush_task())
        elif self._timer is None:
            self._timer = asyncio.create_task(self._flush_later())

    async def emit_text(self, text: str) -> None:
        for piece in pieces(text):
            await self.emit(piece)

    def _flush_task(self) -> "asyncio.Task[None]":
        task = asyncio.create_task(self._flush())
        self._flushes.append(task)
        return task

    async def _flush_later(self) -> None:
        await asyncio.sleep(self.grain.window_seconds)
        self._timer = None
        self._flush_task()

    async def _flush(self) -> None:
        async with self._flushing:
            if not self._waiting:
                return
            content = "".join(self._waiting)
            self._waiting.clear()
            self._waiting_chars = 0
            delta = ReplyDeltaProduced(
                **self.turn.caused(), reply_to=self.turn.message_id, index=self._sent, content=content
            )
            self._sent += 1
            confirmation = await self.deltas.publish(delta, key=key_of(self.turn.session_id), no_confirm=True)
            if confirmation is not None:
                self._confirmations.append(confirmation)

    async def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            await asyncio.gather(self._timer, return_exceptions=True)
            self._timer = None

    async def confirmed(self) -> None:
        """Sends what waits; raises what any flush raised."""
        await self._stop_timer()
        self._flush_task()
        await asyncio.gather(*self._flushes)
        await asyncio.gather(*self._confirmations)

    async def abandon(self) -> None:
        """The turn failed: what waits is dropped, and flushes already under
        way end before the caller reports the failure."""
        await self._stop_timer()
        self._waiting.clear()
        await asyncio.gather(*self._flushes, return_exceptions=True)

    @property
    def text(self) -> str:
        return "".join(self.parts).strip()


class Answerer(Protocol):
    async def answer(self, turn: TurnRequested, superseded: asyncio.Event | None = None) -> None: ...


class EchoAnswerer:
    """AGENT_ANSWERER=echo: says each message back, with no retrieval and no
    model. What is left is the transport alone (gateway, Kafka, session
    worker, agent and back), which is what it is for: measuring that."""

    def __init__(self, deltas: Publisher, completions: Publisher, grain: DeltaGrain | None = None) -> None:
        self.deltas = deltas
        self.completions = completions
        self.grain = grain or DeltaGrain()

    async def answer(self, turn: TurnRequested, superseded: asyncio.Event | None = None) -> None:
        stream = DeltaStream(turn, self.deltas, self.grain)
        try:
            await stream.emit(turn.content)
            await stream.confirmed()
        except BaseException:
            await stream.abandon()
            raise
        reply = Reply(id=reply_id_for(turn.session_id, turn.message_id), content=stream.text, confidence=1.0)
        completed = ReplyCompleted(**turn.caused(), reply_to=turn.message_id, reply=reply)
        await self.completions.publish(completed, key=key_of(turn.session_id))


def remembered(turn: TurnRequested) -> list[HistoryTurn]:
    """The history a generator sees: the summary of older turns first."""
    if not turn.summary:
        return turn.history
    return [HistoryTurn(role="system", content=turn.summary), *turn.history]


class TurnAnswerer:
    def __init__(
        self,
        *,
        retriever: Retriever,
        generator: Generator,
        escalation: EscalationPolicy,
        retrieval: RetrievalOptions,
        escalate_on_no_answer: bool,
        deltas: Publisher,
        completions: Publisher,
        metrics: AgentMetrics,
        budget: LlmBudget | None = None,
        within_budget: Generator | None = None,
        condenser: Condenser | None = None,
        rewriter: LlmRewriter | None = None,
        attachments: SessionAttachments | None = None,
        answers: FinishedAnswers | None = None,
        grain: DeltaGrain | None = None,
    ) -> None:
        """With `attachments`, the files a user attached to their session are
        searched with the knowledge base for that session's turns; with
        `answers`, a finished answer is kept until recorded, and a turn
        delivered again is answered from it, not generated twice. With a
        `condenser`, turns that left the session's memory budget are condensed
        into its summary after the reply. With a `budget`, `generator` is the
        costly one (the LLM) and `within_budget` answers a session that has
        spent its budget."""
        self.retriever = retriever
        self.generator = generator
        self.budget = budget
        self.within_budget = within_budget
        self.condenser = condenser
        self.rewriter = rewriter
        self.attachments = attachments
        self.answers = answers
        self.escalation = escalation
        self.retrieval = retrieval
        self.escalate_on_no_answer = escalate_on_no_answer
        self.deltas = deltas
        self.completions = completions
        self.metrics = metrics
        self.grain = grain or DeltaGrain()

    async def retrieve(self, turn: TurnRequested) -> list[Hit]:
        """The passages a message is about, read with the conversation when it
        is a follow-up: rewritten by the LLM when one is configured
        (rewriting.py), else by its words (followups.py)."""
        k, min_score = self.retrieval.search_k, self.retrieval.min_score
        private = await self._attached(turn.session_id)

        async def search(query: str, limit: int, floor: float) -> list[Hit]:
            return await self.retriever.search(query, limit, floor, private)

        previous = [t.content for t in turn.history if t.role == "user"]
        follow_up = classify(turn.content)
        if not previous or follow_up.shape is Shape.NEW_QUESTION:
            hits = await search(turn.content, k, min_score)
        elif follow_up.shape is Shape.REFERENCE:
            alone = await search(turn.content, k, min_score)
            together = await search(f"{previous[-1]} {follow_up.topic}", k, min_score)
            hits = max(together, alone, key=lambda found: found[0].score if found else 0.0)
        else:
            hits = await self._new_topic(search, previous[-1], follow_up.topic)
        if previous and follow_up.shape is not Shape.NEW_QUESTION and self.rewriter is not None:
            hits = await self._rewritten(search, self.rewriter, turn, follow_up, hits)
        # In retrieval's order (hybrid ranks by more than similarity), less
        # the passages far less similar than the most similar one.
        top = max((h.score for h in hits), default=0.0)
        return [h for h in hits if h.score >= top - self.retrieval.relative_margin]

    async def _rewritten(
        self, search: Search, rewriter: LlmRewriter, turn: TurnRequested, follow_up: FollowUp, by_words: list[Hit]
    ) -> list[Hit]:
        """Trusted, but checked: a small model's rewrite can lose the new topic
        ("and what about returns?" -> "how long does shipping take?"), so a
        rewrite of a new topic must keep the topic's words, and the closer
        match of the two readings wins."""
        rewritten = await rewriter.rewrite(turn.content, turn.history)
        if rewritten is None or (follow_up.shape is Shape.NEW_TOPIC and not keeps_topic(rewritten, follow_up.topic)):
            return by_words
        by_model = await search(rewritten, self.retrieval.search_k, self.retrieval.min_score)
        return max(by_model, by_words, key=lambda found: found[0].score if found else 0.0)

    async def _new_topic(self, search: Search, previous: str, topic: str) -> list[Hit]:
        """ "and what about returns?": passages about returns, ranked by the
        previous question's frame (how long, how much)."""
        k = self.retrieval.search_k
        about = await search(topic, 2 * k, 0.0)
        if not about or about[0].score < TOPIC_FLOOR:
            return []
        on_topic = {h.document_id for h in about if h.score >= max(about[0].score - TOPIC_MARGIN, TOPIC_FLOOR)}
        framed = await search(f"{previous} {topic}", 2 * k, self.retrieval.min_score)
        return [h for h in framed if h.document_id in on_topic][:k]

    async def _attached(self, session_id: str) -> list[PrivatePassage]:
        """The passages of the files this session's user attached and that
        are read (none without attachments: one Redis call, nothing decrypted)."""
        if self.attachments is None:
            return []
        ready = await self.attachments.ready(session_id)
        return [
            PrivatePassage(found.attachment_id, found.filename, p.text, p.vector)
            for found in await self.attachments.passages(session_id, ready)
            for p in found.passages
        ]

    async def _generator_for(self, session_id: str) -> Generator:
        if self.budget is None or self.within_budget is None or not await self.budget.exhausted(session_id):
            return self.generator
        self.metrics.over_budget.inc()
        log.info("LLM budget spent; answering from the passages", extra={"session_id": session_id})
        return self.within_budget

    def _escalation_reason(self, verdict: Verdict, hits: list[Hit]) -> str | None:
        if verdict.reason is None and not hits and self.escalate_on_no_answer and self.escalation.enabled:
            return "no relevant knowledge"
        return verdict.reason

    @staticmethod
    async def _generate(
        generator: Generator, turn: TurnRequested, hits: list[Hit], stream: DeltaStream, superseded: asyncio.Event
    ) -> None:
        """Streams the answer until it ends or `superseded` is set; then at
        once, even while the model is between tokens (its stream is closed)."""

        async def pump() -> None:
            async with contextlib.aclosing(generator.stream(turn.content, remembered(turn), hits)) as produced:
                async for piece in produced:
                    await stream.emit(piece)

        pumping = asyncio.create_task(pump())
        interrupting = asyncio.create_task(superseded.wait())
        try:
            await asyncio.wait({pumping, interrupting}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pumping, interrupting):
                task.cancel()
            await asyncio.gather(interrupting, return_exceptions=True)
            with contextlib.suppress(asyncio.CancelledError):
                await pumping  # its error, if it failed, is the turn's

    async def answer(self, turn: TurnRequested, superseded: asyncio.Event | None = None) -> None:
        """Answers `turn`; once `superseded` is set (a newer message of the
        session, AGENT_DOUBLE_TEXT=interrupt) the answer stops where it is and
        is completed as interrupted."""
        began = time.perf_counter()
        if await self._answered_already(turn):
            return
        superseded = superseded or asyncio.Event()
        stream = DeltaStream(turn, self.deltas, self.grain)
        try:
            verdict, hits, reply, reason = await self._streamed(turn, superseded, stream)
        except BaseException:
            await stream.abandon()  # nothing of this turn after its error frame
            raise
        if self.answers is not None:
            await self.answers.keep(turn.session_id, turn.message_id, reply, reason)
        completed = ReplyCompleted(**turn.caused(), reply_to=turn.message_id, reply=reply, escalation_reason=reason)
        await self.completions.publish(completed, key=key_of(turn.session_id))
        self._observe(verdict, hits, reply, time.perf_counter() - began)
        if reply.interrupted:
            log.info("answer interrupted by a newer message", extra={"reply_to": turn.message_id})
        await self._condense(turn)

    async def _streamed(
        self, turn: TurnRequested, superseded: asyncio.Event, stream: DeltaStream
    ) -> tuple[Verdict, list[Hit], Reply, str | None]:
        """The answer, streamed and confirmed: what the completion says."""
        verdict = self.escalation.assess(turn.content)
        hits: list[Hit] = []
        if verdict.human_requested:
            await stream.emit_text(HANDOFF)
        elif not superseded.is_set():
            hits = await self.retrieve(turn)
            if hits:
                self.metrics.retrieval_top_score.observe(max(h.score for h in hits))
            generator = await self._generator_for(turn.session_id)
            await self._generate(generator, turn, hits, stream, superseded)
            if generator is self.generator and self.budget is not None and hits:
                tokens = estimated_tokens(turn.content, turn.history, hits, stream.text)
                await self.budget.charge(turn.session_id, tokens)
        interrupted = superseded.is_set() and not verdict.human_requested
        # An interrupted answer escalates for what the user said, not for what
        # it did not get to find.
        reason = verdict.reason if interrupted else self._escalation_reason(verdict, hits)
        if reason is not None and not verdict.human_requested and not interrupted:
            await stream.emit_text(f"\n\n{ESCALATION_NOTE}")
        reply = Reply(
            id=reply_id_for(turn.session_id, turn.message_id),
            content=stream.text,
            sources=sources_of(hits, stream.text) if stream.text else [],
            confidence=round(hits[0].score, 4) if hits else (1.0 if verdict.human_requested else 0.0),
            escalated=reason is not None,
            interrupted=interrupted,
        )
        await stream.confirmed()
        return verdict, hits, reply, reason

    async def _answered_already(self, turn: TurnRequested) -> bool:
        """A turn delivered again (a restart before its commit, or the same
        message id sent again before the reply) whose answer was finished:
        completed once more from what was kept, without the model."""
        if self.answers is None or (kept := await self.answers.get(turn.session_id, turn.message_id)) is None:
            return False
        reply, reason = kept
        completed = ReplyCompleted(**turn.caused(), reply_to=turn.message_id, reply=reply, escalation_reason=reason)
        await self.completions.publish(completed, key=key_of(turn.session_id))
        self.metrics.answers.labels("reused").inc()
        log.info("answer reused for a turn delivered again", extra={"reply_to": turn.message_id})
        return True

    async def _condense(self, turn: TurnRequested) -> None:
        """After the reply, so the user waits for no summary."""
        if not turn.condense or self.condenser is None:
            return
        summary = await self.condenser.condense(turn.summary, turn.condense)
        condensed = MemoryCondensed(**turn.caused(), summary=summary, upto=turn.condense_upto)
        await self.completions.publish(condensed, key=key_of(turn.session_id))

    def _observe(self, verdict: Verdict, hits: list[Hit], reply: Reply, seconds: float) -> None:
        if verdict.human_requested:
            outcome = "handoff"
        elif reply.interrupted:
            outcome = "interrupted"
        else:
            outcome = "answered" if hits else "no_answer"
        self.metrics.answers.labels(outcome).inc()
        if reply.escalated:
            self.metrics.escalations.inc()
        self.metrics.answer_seconds.observe(seconds)

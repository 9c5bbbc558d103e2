"""Turning retrieved passages into an answer.

Two generators stream the same way: the extractive one (no LLM configured:
it quotes the passages' most relevant sentences and never invents) and the
LLM one (any OpenAI-compatible endpoint), which falls back to the extractive
answer when the endpoint fails or is too slow.
"""

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

import numpy as np
import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam

from supportdesk_contracts.events import HistoryTurn
from supportdesk_knowledge.chunking import split_sentences
from supportdesk_knowledge.index import Hit

log = logging.getLogger(__name__)

NO_ANSWER = "I'm sorry, I couldn't find anything about that in our knowledge base, so I won't guess."
LLM_FALLBACK_NOTE = "Our assistant is temporarily unavailable, so here is what our documentation says: "
_PIECES = re.compile(r"\s*\S+\s*")


class Encoder(Protocol):
    async def encode(self, texts: Sequence[str]) -> np.ndarray: ...


class Generator(Protocol):
    def stream(self, question: str, history: list[HistoryTurn], hits: list[Hit]) -> AsyncIterator[str]: ...


def pieces(text: str) -> list[str]:
    """Word-sized pieces, whitespace kept, so joining them restores the text."""
    return _PIECES.findall(text)


class ExtractiveGenerator:
    """Answers with the passages' sentences closest to the question."""

    def __init__(self, encoder: Encoder, max_sentences: int = 2, margin: float = 0.08) -> None:
        self.encoder = encoder
        self.max_sentences = max_sentences
        self.margin = margin

    async def compose(self, question: str, hits: list[Hit]) -> str:
        if not hits:
            return NO_ANSWER
        candidates: list[tuple[int, str]] = []
        for rank, hit in enumerate(hits[:3]):
            candidates += [(rank, s) for s in split_sentences(hit.text)]
        if not candidates:
            return NO_ANSWER
        vectors = await self.encoder.encode([question] + [s for _, s in candidates])
        similarity = vectors[1:] @ vectors[0]
        best = float(similarity.max())
        # Sentences nearly as relevant as the best one, in document order.
        chosen = [i for i in np.argsort(-similarity)[: self.max_sentences] if similarity[i] >= best - self.margin]
        chosen.sort()
        top_title = hits[candidates[chosen[0]][0]].title
        body = " ".join(candidates[i][1] for i in chosen)
        return f"According to our {top_title.lower()} guide: {body}" if top_title else body

    async def stream(self, question: str, history: list[HistoryTurn], hits: list[Hit]) -> AsyncIterator[str]:
        for piece in pieces(await self.compose(question, hits)):
            yield piece


SYSTEM_PROMPT = (
    "You are a customer support assistant. Answer only from the numbered passages "
    "below; if they do not contain the answer, say you don't know. Be brief.\n\nPassages:\n{passages}"
)


class LlmGenerator:
    def __init__(
        self,
        client: AsyncOpenAI,
        model: str,
        fallback: ExtractiveGenerator,
        *,
        timeout_seconds: float,
        max_tokens: int,
        temperature: float,
    ) -> None:
        self.client = client
        self.model = model
        self.fallback = fallback
        self.timeout = timeout_seconds
        self.max_tokens = max_tokens
        self.temperature = temperature

    async def stream(self, question: str, history: list[HistoryTurn], hits: list[Hit]) -> AsyncIterator[str]:
        if not hits:
            # Nothing relevant: the model would only invent.
            for piece in pieces(NO_ANSWER):
                yield piece
            return
        passages = "\n".join(f"[{i + 1}] ({h.title}) {h.text}" for i, h in enumerate(hits))
        messages: list[ChatCompletionMessageParam] = [
            {"role": "system", "content": SYSTEM_PROMPT.format(passages=passages)}
        ]
        for turn in history:
            if turn.role in ("assistant", "agent"):
                messages.append({"role": "assistant", "content": turn.content})
            elif turn.role == "user":
                messages.append({"role": "user", "content": turn.content})
        messages.append({"role": "user", "content": question})
        produced = False
        try:
            async with asyncio.timeout(self.timeout):
                response = await self.client.chat.completions.create(
                    model=self.model,
                    messages=messages,
                    stream=True,
                    max_tokens=self.max_tokens,
                    temperature=self.temperature,
                )
                async for chunk in response:
                    if chunk.choices and chunk.choices[0].delta.content:
                        produced = True
                        yield chunk.choices[0].delta.content
        except (openai.OpenAIError, TimeoutError) as exc:
            log.warning("LLM unavailable, answering from passages", extra={"error": f"{type(exc).__name__}: {exc}"})
            if produced:
                yield "\n\n(The answer was cut short; our assistant is temporarily unavailable.)"
                return
            yield LLM_FALLBACK_NOTE
            async for piece in self.fallback.stream(question, history, hits):
                yield piece
            return
        if not produced:
            async for piece in self.fallback.stream(question, history, hits):
                yield piece

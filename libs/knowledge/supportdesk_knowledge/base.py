"""The knowledge base: embedder plus index, opened once per process."""

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from opentelemetry import trace

from supportdesk_knowledge.chunking import Passage, chunk_document
from supportdesk_knowledge.edge import EdgeIndex
from supportdesk_knowledge.embedder import BULK_BATCH_TEXTS, Embedder
from supportdesk_knowledge.index import Chunk, Hit, KnowledgeIndex, open_client
from supportdesk_knowledge.keywords import KeywordEncoder, SparseVector
from supportdesk_knowledge.private import PrivatePassage, encoded, ranked
from supportdesk_knowledge.settings import KnowledgeSettings

tracer = trace.get_tracer("supportdesk.knowledge")

StageTimer = Callable[[str, float], None]
"""Told how long a stage of a search took: `embed` or `search` (seconds)."""


def headed(title: str, passage: Passage) -> str:
    """A chunk as it is embedded: under its document's title and headings, so
    that a chunk that never names its subject ("takes 3-5 days") still
    matches questions about it."""
    heading = " › ".join(part for part in (title, passage.section) if part)
    return f"{heading}. {passage.text}" if heading else passage.text


Index = KnowledgeIndex | EdgeIndex


def open_index(settings: KnowledgeSettings, dimension: int) -> Index:
    """A Qdrant server's collection (QDRANT_URL), else the embedded engine's."""
    if settings.qdrant_url or settings.qdrant_embedded == "local":
        return KnowledgeIndex(
            open_client(settings), settings.qdrant_collection, dimension, server=bool(settings.qdrant_url)
        )
    folder = Path(settings.qdrant_path)
    return EdgeIndex(folder / "edge", settings.qdrant_collection, dimension, migrate_from=folder)


@dataclass
class KnowledgeBase:
    settings: KnowledgeSettings
    embedder: Embedder
    index: Index
    keywords: KeywordEncoder = field(default_factory=KeywordEncoder)
    timings: StageTimer | None = None

    @classmethod
    async def open(cls, settings: KnowledgeSettings) -> "KnowledgeBase":
        # Loading the model takes seconds; off the event loop, the process
        # keeps answering its liveness and start-up probes meanwhile.
        embedder = await asyncio.to_thread(
            Embedder,
            settings.embedding_model_path,
            settings.embedding_batch_size,
            settings.torch_num_threads,
            settings.embedding_cache_size,
        )
        index = open_index(settings, embedder.dimension)
        await index.ensure_collection_when_up(settings.qdrant_connect_timeout_seconds)
        return cls(settings, embedder, index)

    async def close(self) -> None:
        await self.index.close()

    async def chunks_of(self, text: str) -> list[Passage]:
        """Off the event loop: a long document takes a while to cut. Its
        tokens are counted on a tokenizer of their own, so chat texts are
        encoded meanwhile."""
        return await asyncio.to_thread(self._chunk, text)

    def _chunk(self, text: str) -> list[Passage]:
        return chunk_document(
            text,
            self.embedder.count_tokens,
            self.settings.rag_chunk_tokens,
            self.settings.rag_chunk_overlap_tokens,
            count_batch=self.embedder.count_tokens_batch,
        )

    async def add_document(
        self,
        document_id: str,
        title: str,
        text: str,
        *,
        sample: bool = False,
        url: str | None = None,
        metadata: Mapping[str, str] | None = None,
        version: int | None = None,
    ) -> int:
        """Indexes a document's chunks in place of its earlier versions' (no
        reader sees both, nor neither); `version` orders them (now when
        unset); `url` and `metadata` travel with every chunk into citations."""
        with tracer.start_as_current_span("chunk", attributes={"supportdesk.document.chars": len(text)}) as span:
            passages = await self.chunks_of(text)
            span.set_attribute("supportdesk.chunks", len(passages))
        if not passages:
            return 0
        embedded = [headed(title, p) for p in passages]
        # The keyword vectors in a thread while the model encodes (a second
        # or so for a long document): off the event loop, and in the time the
        # pipeline waits for the model anyway.
        vectors, keywords = await asyncio.gather(
            self._embed_batches(embedded), asyncio.to_thread(self._keyword_vectors, embedded)
        )
        labels = dict(metadata or {})
        # A new version beside the old one (`replace_document`): when it was
        # published (µs), so the same event indexed twice is the same version.
        version = version if version is not None else time.time_ns() // 1000
        chunks = [
            Chunk(document_id, title, i, p.text, p.section, sample, url, labels, version)
            for i, p in enumerate(passages)
        ]
        with tracer.start_as_current_span(
            "upsert",
            kind=trace.SpanKind.CLIENT,
            attributes={"db.system.name": "qdrant", "supportdesk.chunks": len(chunks)},
        ):
            return await self.index.replace_document(chunks, vectors.tolist(), keywords)

    def _keyword_vectors(self, texts: Sequence[str]) -> list[SparseVector]:
        return [self.keywords.document(text) for text in texts]

    async def _embed_batches(self, texts: Sequence[str]) -> np.ndarray:
        """One encoder call (and span) per batch: a long document shows where
        its time went, and chat texts waiting meanwhile go before the next
        batch. Batches of texts of about the same length, longest first: the
        model pads a batch to its longest text, and a document's last chunk
        of each section is often short."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        vectors = np.empty((len(texts), self.embedder.dimension), dtype=np.float32)
        for start in range(0, len(order), BULK_BATCH_TEXTS):
            batch = order[start : start + BULK_BATCH_TEXTS]
            with tracer.start_as_current_span("embed batch", attributes={"supportdesk.batch.size": len(batch)}):
                vectors[batch] = await self.embedder.encode([texts[i] for i in batch], bulk=True)
        return vectors

    async def search(
        self, query: str, limit: int, min_score: float, private: Sequence[PrivatePassage] = ()
    ) -> list[Hit]:
        """The best passages of the index and of `private` ones (a session's
        attachments), ranked together on the same similarity."""
        began = time.perf_counter()
        with tracer.start_as_current_span("embed query", attributes={"supportdesk.query.chars": len(query)}):
            vector = (await self.embedder.encode([query]))[0]
        embedded = time.perf_counter()
        keywords = self.keywords.query(query) if self.settings.retrieval_mode == "hybrid" else None
        with tracer.start_as_current_span(
            "search",
            kind=trace.SpanKind.CLIENT,
            attributes={"db.system.name": "qdrant", "db.collection.name": self.index.collection},
        ) as span:
            hits = await self.index.search(
                vector.tolist(), limit, min_score, keywords, self.settings.retrieval_keyword_weight
            )
            span.set_attribute("supportdesk.hits", len(hits))
            if hits:
                span.set_attribute("supportdesk.top_score", hits[0].score)
        if self.timings is not None:
            self.timings("embed", embedded - began)
            self.timings("search", time.perf_counter() - embedded)
        if not private:
            return hits
        return sorted([*hits, *ranked(vector, private, limit, min_score)], key=lambda h: h.score, reverse=True)[:limit]

    async def passages_of(self, title: str, text: str, most: int) -> tuple[list[tuple[str, str]], bool]:
        """A private document's passages (text, encoded vector), cut and
        embedded as the index's chunks are; at most `most` of them (and
        whether some were left out)."""
        passages = await self.chunks_of(text)
        kept = passages[:most]
        if not kept:
            return [], False
        vectors = await self._embed_batches([headed(title, p) for p in kept])
        return [(p.text, encoded(v)) for p, v in zip(kept, vectors, strict=True)], len(passages) > most

"""The knowledge base: embedder plus index, opened once per process."""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from supportdesk_knowledge.chunking import chunk_text
from supportdesk_knowledge.embedder import Embedder
from supportdesk_knowledge.index import Chunk, Hit, KnowledgeIndex, open_client
from supportdesk_knowledge.private import PrivatePassage, encoded, ranked
from supportdesk_knowledge.settings import KnowledgeSettings


@dataclass
class KnowledgeBase:
    settings: KnowledgeSettings
    embedder: Embedder
    index: KnowledgeIndex

    @classmethod
    async def open(cls, settings: KnowledgeSettings) -> "KnowledgeBase":
        # Loading the model takes seconds; off the event loop, the process
        # keeps answering its liveness and start-up probes meanwhile.
        embedder = await asyncio.to_thread(
            Embedder, settings.embedding_model_path, settings.embedding_batch_size, settings.torch_num_threads
        )
        index = KnowledgeIndex(
            open_client(settings), settings.qdrant_collection, embedder.dimension, server=bool(settings.qdrant_url)
        )
        await index.ensure_collection_when_up(settings.qdrant_connect_timeout_seconds)
        return cls(settings, embedder, index)

    async def close(self) -> None:
        await self.index.client.close()

    async def add_document(self, document_id: str, title: str, text: str) -> int:
        pieces = chunk_text(text, self.settings.rag_chunk_size, self.settings.rag_chunk_overlap)
        if not pieces:
            return 0
        # The title is embedded with each chunk so that a chunk that never
        # names its subject ("takes 3-5 days") still matches questions about it.
        vectors = await self.embedder.encode([f"{title}. {p}" if title else p for p in pieces])
        chunks = [Chunk(document_id, title, i, p) for i, p in enumerate(pieces)]
        return await self.index.replace_document(chunks, vectors.tolist())

    async def search(
        self, query: str, limit: int, min_score: float, private: Sequence[PrivatePassage] = ()
    ) -> list[Hit]:
        """The best passages of the index and of `private` ones (a session's
        attachments), ranked together on the same similarity."""
        vector = (await self.embedder.encode([query]))[0]
        hits = await self.index.search(vector.tolist(), limit, min_score)
        if not private:
            return hits
        return sorted([*hits, *ranked(vector, private, limit, min_score)], key=lambda h: h.score, reverse=True)[:limit]

    async def passages_of(self, title: str, text: str, most: int) -> tuple[list[tuple[str, str]], bool]:
        """A private document's passages (text, encoded vector), cut and
        embedded as the index's chunks are; at most `most` of them (and
        whether some were left out)."""
        pieces = chunk_text(text, self.settings.rag_chunk_size, self.settings.rag_chunk_overlap)
        kept = pieces[:most]
        if not kept:
            return [], False
        vectors = await self.embedder.encode([f"{title}. {p}" if title else p for p in kept])
        return [(p, encoded(v)) for p, v in zip(kept, vectors, strict=True)], len(pieces) > most

"""The knowledge index in Qdrant Edge: Qdrant's own engine inside the
process (`qdrant-edge-py`), the embedded default.

qdrant-client's local mode, the other embedded engine, scores every point
in Python: fine for a few thousand chunks, ~100 ms a search at 100k. Edge
searches the same data in Rust (~12 ms at 100k on two cores, docs/benchmarks.md)
and keeps it in a write-ahead log and segments on disk. Like local mode it
is one process per folder; beyond one machine, a Qdrant server (QDRANT_URL).

The same chunks, payloads, version swap and fusion as `KnowledgeIndex`
(index.py); the engine's calls block, so they run in a worker thread.
"""

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import qdrant_edge as edge
from qdrant_client import AsyncQdrantClient, models

from supportdesk_knowledge.index import DENSE, KEYWORDS, Chunk, Hit, fused, payload_of
from supportdesk_knowledge.keywords import SparseVector

log = logging.getLogger(__name__)

SAMPLE_FLAG = "sample"
"""Kept in a `flags` list beside the boolean `sample`: Qdrant Edge 0.9 matches
no boolean payload value, a keyword in a list it does."""


MIGRATION_PAGE = 512


class IndexInUse(RuntimeError):
    """Another process holds the embedded index's folder."""


def _copied(point: models.Record) -> edge.Point:
    """A local-mode point as Qdrant Edge stores it."""
    payload = dict(point.payload or {})
    named: dict[str, Any] = {}
    stored = point.vector if isinstance(point.vector, dict) else {DENSE: point.vector}
    for name, vector in stored.items():
        if isinstance(vector, models.SparseVector):
            named[name] = edge.SparseVector(list(vector.indices), list(vector.values))
        elif vector is not None:
            named[name] = vector
    payload["flags"] = [SAMPLE_FLAG] if payload.get("sample") else []
    return edge.Point(str(point.id), named, payload)


def _document(document_id: str) -> edge.FieldCondition:
    return edge.FieldCondition(key="document_id", match=edge.MatchValue(document_id))


class EdgeIndex:
    """`KnowledgeIndex`'s interface over a Qdrant Edge shard in `path`."""

    server = False

    def __init__(self, path: Path, collection: str, dimension: int, migrate_from: Path | None = None) -> None:
        self.path = path / collection
        self.migrate_from = migrate_from
        self.collection = collection
        self.dimension = dimension
        self.keywords = True
        self._shard: edge.EdgeShard | None = None
        self._writing = asyncio.Lock()

    @property
    def shard(self) -> edge.EdgeShard:
        if self._shard is None:
            raise RuntimeError("the index is not open: call ensure_collection first")
        return self._shard

    def _config(self) -> edge.EdgeConfig:
        return edge.EdgeConfig(
            vectors={DENSE: edge.EdgeVectorParams(size=self.dimension, distance=edge.Distance.Cosine)},
            # Qdrant weighs each term by its IDF over the shard.
            sparse_vectors={KEYWORDS: edge.EdgeSparseVectorParams(modifier=edge.Modifier.Idf)},
        )

    def _open(self) -> tuple[edge.EdgeShard, bool]:
        """The shard, and whether it was just created."""
        try:
            if self.path.is_dir() and any(self.path.iterdir()):
                return edge.EdgeShard.load(str(self.path)), False
            return edge.EdgeShard.create(str(self.path), self._config()), True
        except Exception as exc:  # the engine raises only plain Exceptions
            if "WouldBlock" in str(exc):
                raise IndexInUse(
                    f"the embedded index {self.path} is open in another process: one process per folder "
                    "(QDRANT_PATH), or a Qdrant server (QDRANT_URL) to share it"
                ) from exc
            raise

    async def ensure_collection(self) -> None:
        if self._shard is not None:
            return
        self._shard, created = await asyncio.to_thread(self._open)
        if created and self.migrate_from is not None:
            await self._migrate(self.migrate_from)

    async def _migrate(self, folder: Path) -> None:
        """An index kept by local mode (QDRANT_EMBEDDED=local, the engine
        before this one) in the same folder, copied in once, so that an
        upgrade does not silently start from an empty knowledge base."""
        if not (folder / "collection" / self.collection).is_dir():
            return
        client = AsyncQdrantClient(path=str(folder))
        copied = 0
        try:
            offset: Any = None
            while True:
                points, offset = await client.scroll(
                    self.collection, limit=MIGRATION_PAGE, offset=offset, with_payload=True, with_vectors=True
                )
                if points:
                    await self._update(edge.UpdateOperation.upsert_points([_copied(p) for p in points]))
                    copied += len(points)
                if offset is None:
                    break
        finally:
            await client.close()
        log.warning("copied %d chunks of the local-mode index in %s into %s", copied, folder, self.path)

    async def ensure_collection_when_up(self, timeout_seconds: float) -> None:
        """Nothing to wait for: the engine is in this process."""
        await self.ensure_collection()

    async def close(self) -> None:
        if self._shard is not None:
            shard, self._shard = self._shard, None
            await asyncio.to_thread(shard.close)

    async def _update(self, operation: edge.UpdateOperation) -> None:
        async with self._writing:
            await asyncio.to_thread(self.shard.update, operation)

    async def replace_document(
        self, chunks: list[Chunk], vectors: list[list[float]], keywords: list[SparseVector] | None = None
    ) -> int:
        """The new version beside the old one, then the old one removed:
        `search` keeps each document's newest version, so no reader sees
        both versions, nor neither."""
        if not chunks:
            return 0
        sparse: list[SparseVector | None] = list(keywords) if keywords is not None else [None] * len(chunks)
        points = []
        for chunk, vector, terms in zip(chunks, vectors, sparse, strict=True):
            named: dict[str, Any] = {DENSE: vector}
            if terms is not None and terms.indices:
                named[KEYWORDS] = edge.SparseVector(terms.indices, terms.values)
            payload = payload_of(chunk) | {"flags": [SAMPLE_FLAG] if chunk.sample else []}
            points.append(edge.Point(chunk.point_id, named, payload))
        await self._update(edge.UpdateOperation.upsert_points(points))
        older = edge.Filter(
            must=[
                _document(chunks[0].document_id),
                edge.Filter(
                    should=[
                        edge.FieldCondition(key="version", range=edge.RangeFloat(lt=float(chunks[0].version))),
                        edge.IsEmptyCondition(key="version"),
                    ]
                ),
            ]
        )
        await self._update(edge.UpdateOperation.delete_points_by_filter(older))
        return len(chunks)

    async def delete_document(self, document_id: str) -> None:
        await self._update(edge.UpdateOperation.delete_points_by_filter(edge.Filter(must=[_document(document_id)])))

    def _samples(self, known: Sequence[str]) -> edge.Filter:
        conditions: list[Any] = [edge.FieldCondition(key="flags", match=edge.MatchValue(SAMPLE_FLAG))]
        if known:
            conditions.append(edge.FieldCondition(key="document_id", match=edge.MatchAny(list(known))))
        return edge.Filter(should=conditions)

    async def delete_samples(self, known: Sequence[str] = ()) -> None:
        await self._update(edge.UpdateOperation.delete_points_by_filter(self._samples(known)))

    async def count(
        self, document_id: str | None = None, *, samples: bool | None = None, known: Sequence[str] = ()
    ) -> int:
        conditions: edge.Filter | None = edge.Filter(must=[_document(document_id)]) if document_id else None
        if samples is not None:
            conditions = self._samples(known) if samples else edge.Filter(must_not=[self._samples(known)])
        return await asyncio.to_thread(self.shard.count, edge.CountRequest(exact=True, filter=conditions))

    async def search(
        self,
        vector: list[float],
        limit: int,
        min_score: float,
        keywords: SparseVector | None = None,
        keyword_weight: float = 1.0,
    ) -> list[Hit]:
        """As `KnowledgeIndex.search`: dense similarity, plus the keyword
        score when given the question's keywords."""
        hybrid = keywords is not None and bool(keywords.indices)
        depth = limit * 4 if hybrid else limit * 2
        by_meaning = edge.QueryRequest(limit=depth, query=edge.Query.Nearest(vector), with_payload=True)
        requests = [by_meaning]
        if hybrid:
            assert keywords is not None
            requests.append(
                edge.QueryRequest(
                    limit=depth,
                    query=edge.Query.Nearest(edge.SparseVector(keywords.indices, keywords.values), using=KEYWORDS),
                    with_payload=True,
                    with_vector=[DENSE],
                )
            )
        found = await asyncio.to_thread(lambda: [self.shard.query(request) for request in requests])
        return fused(vector, found[0], found[1] if hybrid else [], limit, min_score, keyword_weight)

    async def ready(self) -> bool:
        await asyncio.to_thread(self.shard.info)
        return True

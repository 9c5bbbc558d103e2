"""The Qdrant collection of knowledge chunks. Embedded local mode by default,
a Qdrant server when a URL is given; the code is the same."""

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import httpx
from qdrant_client import AsyncQdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from supportdesk_knowledge.settings import KnowledgeSettings

# Chunk point ids derive from (document, position), so indexing the same
# document again overwrites its points instead of adding copies.
_POINT_NAMESPACE = uuid.UUID("6b1f2f4e-9c3d-4a7e-8f21-5d8c0e9a7b11")


log = logging.getLogger(__name__)


class QdrantUnavailable(RuntimeError):
    """The Qdrant server did not answer within the start-up wait."""


_TRY_AGAIN = (HTTPStatus.REQUEST_TIMEOUT, HTTPStatus.TOO_MANY_REQUESTS)


class IndexOutage(ConnectionError):
    """Qdrant could not be reached or answered 5xx: a transient failure (a
    ConnectionError, which the event consumers retry with backoff), unlike a
    refusal (4xx), which retrying would not change."""


@contextlib.asynccontextmanager
async def outage_as_transient() -> AsyncIterator[None]:
    try:
        yield
    except (ResponseHandlingException, httpx.TransportError) as exc:
        raise IndexOutage(f"Qdrant unreachable: {exc}") from exc
    except UnexpectedResponse as exc:
        status = exc.status_code
        if status is not None and (status >= HTTPStatus.INTERNAL_SERVER_ERROR or status in _TRY_AGAIN):
            raise IndexOutage(f"Qdrant answered {status}") from exc
        raise


@dataclass(frozen=True)
class Chunk:
    document_id: str
    title: str
    position: int
    text: str

    @property
    def point_id(self) -> str:
        return str(uuid.uuid5(_POINT_NAMESPACE, f"{self.document_id}:{self.position}"))


@dataclass(frozen=True)
class Hit:
    document_id: str
    title: str
    text: str
    score: float
    attachment: bool = False
    """From a file the user attached to their conversation, not the knowledge base."""


def open_client(settings: KnowledgeSettings) -> AsyncQdrantClient:
    if settings.qdrant_url:
        return AsyncQdrantClient(url=settings.qdrant_url, api_key=settings.qdrant_api_key)
    return AsyncQdrantClient(path=settings.qdrant_path)


class KnowledgeIndex:
    def __init__(self, client: AsyncQdrantClient, collection: str, dimension: int, server: bool) -> None:
        self.client = client
        self.collection = collection
        self.dimension = dimension
        self.server = server

    async def ensure_collection(self) -> None:
        if await self.client.collection_exists(self.collection):
            return
        try:
            await self.client.create_collection(
                self.collection,
                vectors_config=models.VectorParams(size=self.dimension, distance=models.Distance.COSINE),
            )
        except UnexpectedResponse as exc:
            # Two pods starting at once both find no collection; the server
            # creates it for one and answers 409 to the other, which is fine.
            if exc.status_code != HTTPStatus.CONFLICT:
                raise
        if self.server:  # local mode ignores payload indexes (and warns)
            await self.client.create_payload_index(
                self.collection, "document_id", field_schema=models.PayloadSchemaType.KEYWORD
            )

    async def ensure_collection_when_up(self, timeout_seconds: float) -> None:
        """`ensure_collection`, waiting with backoff for a server that is
        still starting (a first deploy pulls its image): the pod waits
        instead of crash-looping."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_seconds
        backoff = 0.5
        while True:
            try:
                await self.ensure_collection()
                return
            except (ResponseHandlingException, httpx.TransportError) as exc:
                if loop.time() + backoff > deadline:
                    raise QdrantUnavailable(f"Qdrant not reachable after {timeout_seconds:.0f} s: {exc}") from exc
                log.warning("qdrant not ready (%s); retrying in %.1f s", exc, backoff)
                await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
                backoff = min(backoff * 2, 10.0)

    def _document_filter(self, document_id: str) -> models.Filter:
        return models.Filter(
            must=[models.FieldCondition(key="document_id", match=models.MatchValue(value=document_id))]
        )

    async def replace_document(self, chunks: list[Chunk], vectors: list[list[float]]) -> int:
        """Index a document's chunks, removing any chunks of an earlier, longer
        version of it. Returns the chunk count."""
        if not chunks:
            return 0
        document_id = chunks[0].document_id
        async with outage_as_transient():
            await self._upsert_replacing(document_id, chunks, vectors)
        return len(chunks)

    async def _upsert_replacing(self, document_id: str, chunks: list[Chunk], vectors: list[list[float]]) -> None:
        await self.client.upsert(
            self.collection,
            points=[
                models.PointStruct(
                    id=chunk.point_id,
                    vector=vector,
                    payload={
                        "document_id": chunk.document_id,
                        "title": chunk.title,
                        "position": chunk.position,
                        "text": chunk.text,
                    },
                )
                for chunk, vector in zip(chunks, vectors, strict=True)
            ],
        )
        await self.client.delete(
            self.collection,
            points_selector=models.FilterSelector(
                filter=models.Filter(
                    must=[models.FieldCondition(key="document_id", match=models.MatchValue(value=document_id))],
                    must_not=[models.FieldCondition(key="position", range=models.Range(lt=len(chunks)))],
                )
            ),
        )

    async def delete_document(self, document_id: str) -> None:
        async with outage_as_transient():
            await self.client.delete(
                self.collection, points_selector=models.FilterSelector(filter=self._document_filter(document_id))
            )

    async def count(self, document_id: str | None = None) -> int:
        result = await self.client.count(
            self.collection,
            count_filter=self._document_filter(document_id) if document_id else None,
            exact=True,
        )
        return result.count

    async def search(self, vector: list[float], limit: int, min_score: float) -> list[Hit]:
        async with outage_as_transient():
            response = await self.client.query_points(
                self.collection, query=vector, limit=limit, score_threshold=min_score, with_payload=True
            )
        hits = []
        for point in response.points:
            payload: dict[str, Any] = point.payload or {}
            hits.append(
                Hit(
                    document_id=str(payload.get("document_id", "")),
                    title=str(payload.get("title", "")),
                    text=str(payload.get("text", "")),
                    score=float(point.score),
                )
            )
        return hits

    async def ready(self) -> bool:
        await self.client.get_collections()
        return True

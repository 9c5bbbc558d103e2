"""The Qdrant collection of knowledge chunks. Embedded local mode by default,
a Qdrant server when a URL is given; the code is the same."""

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Protocol

import httpx
from qdrant_client import AsyncQdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from supportdesk_knowledge.keywords import SparseVector
from supportdesk_knowledge.settings import KnowledgeSettings

# Chunk point ids derive from (document, version, position): a new version
# is written beside the old one, which is deleted after it (see
# `replace_document`). Indexing the same
# document again overwrites its points instead of adding copies.
_POINT_NAMESPACE = uuid.UUID("6b1f2f4e-9c3d-4a7e-8f21-5d8c0e9a7b11")


log = logging.getLogger(__name__)


class QdrantUnavailable(RuntimeError):
    """The Qdrant server did not answer within the start-up wait."""


_TRY_AGAIN = (HTTPStatus.REQUEST_TIMEOUT, HTTPStatus.TOO_MANY_REQUESTS)
KEYWORDS = "keywords"
DENSE = ""  # the collection's unnamed vector


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
    section: str = ""
    sample: bool = False
    url: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    version: int = 0
    """When its document's version was published (µs): the newest wins."""

    @property
    def point_id(self) -> str:
        return str(uuid.uuid5(_POINT_NAMESPACE, f"{self.document_id}:{self.version}:{self.position}"))


@dataclass(frozen=True)
class Hit:
    document_id: str
    title: str
    text: str
    score: float
    """Cosine similarity to the question (whichever signal found the passage):
    comparable across turns, so thresholds can be calibrated on it."""
    attachment: bool = False
    """From a file the user attached to their conversation, not the knowledge base."""
    section: str = ""
    sample: bool = False
    url: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


_SAMPLES = models.Filter(must=[models.FieldCondition(key="sample", match=models.MatchValue(value=True))])


class Found(Protocol):
    """A point a search found: qdrant-client's and Qdrant Edge's alike."""

    @property
    def id(self) -> Any: ...
    @property
    def score(self) -> float: ...
    @property
    def payload(self) -> dict[str, Any] | None: ...
    @property
    def vector(self) -> Any: ...


def _cosine(query: list[float], stored: Any) -> float:
    """The stored vector of a point found by its keywords (normalised, as the
    query is): a list, or the server's {name: list}."""
    values = stored.get(DENSE) if isinstance(stored, dict) else stored
    if not isinstance(values, list):
        return 0.0
    return float(sum(q * v for q, v in zip(query, values, strict=False)))


def _newest_versions(found: Mapping[str, Found]) -> list[str]:
    """The points of each document's newest version among those found."""

    def version(point: Found) -> int:
        return int((point.payload or {}).get("version", 0))

    def document(point: Found) -> str:
        return str((point.payload or {}).get("document_id", ""))

    newest: dict[str, int] = {}
    for point in found.values():
        newest[document(point)] = max(newest.get(document(point), 0), version(point))
    return [key for key, point in found.items() if version(point) == newest[document(point)]]


def _hit(point: Found, score: float) -> Hit:
    payload: dict[str, Any] = point.payload or {}
    return Hit(
        document_id=str(payload.get("document_id", "")),
        title=str(payload.get("title", "")),
        text=str(payload.get("text", "")),
        score=score,
        section=str(payload.get("section", "")),
        sample=bool(payload.get("sample", False)),
        url=str(payload["url"]) if payload.get("url") else None,
        metadata={str(k): str(v) for k, v in (payload.get("metadata") or {}).items()},
    )


def payload_of(chunk: Chunk) -> dict[str, Any]:
    return {
        "document_id": chunk.document_id,
        "title": chunk.title,
        "section": chunk.section,
        "position": chunk.position,
        "version": chunk.version,
        "text": chunk.text,
        "sample": chunk.sample,
        **({"url": chunk.url} if chunk.url else {}),
        **({"metadata": chunk.metadata} if chunk.metadata else {}),
    }


def fused(
    vector: list[float],
    by_meaning: Sequence[Found],
    by_keywords: Sequence[Found],
    limit: int,
    min_score: float,
    keyword_weight: float,
) -> list[Hit]:
    """The `limit` best of the points found by the dense and the keyword
    search, each document's newest version only. Relative score fusion: the
    similarity plus the keyword score scaled to the best keyword match among
    the candidates. With two rankings, rank fusion ties a passage first in one
    with the one first in the other; scores keep how far apart they are."""
    cosine = {str(p.id): float(p.score) for p in by_meaning}
    found = {str(p.id): p for p in [*by_meaning, *by_keywords]}
    matched: dict[str, float] = {}
    best = max((p.score for p in by_keywords), default=0.0) or 1.0
    for point in by_keywords:
        key = str(point.id)
        matched[key] = point.score / best
        cosine.setdefault(key, _cosine(vector, point.vector))
    score = {key: cosine[key] + keyword_weight * matched.get(key, 0.0) for key in found}
    ordered = sorted(_newest_versions(found), key=lambda key: score[key], reverse=True)
    return [_hit(found[key], cosine[key]) for key in ordered if cosine[key] >= min_score][:limit]


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
        self.keywords = False
        """Whether the collection holds keyword vectors (one made before them does not)."""

    async def ensure_collection(self) -> None:
        if await self.client.collection_exists(self.collection):
            info = await self.client.get_collection(self.collection)
            self.keywords = KEYWORDS in (info.config.params.sparse_vectors or {})
            if not self.keywords:
                log.warning("collection %s has no keyword vectors: dense retrieval only", self.collection)
            return
        try:
            await self.client.create_collection(
                self.collection,
                vectors_config=models.VectorParams(size=self.dimension, distance=models.Distance.COSINE),
                # Qdrant weighs each term by its IDF over the collection.
                sparse_vectors_config={KEYWORDS: models.SparseVectorParams(modifier=models.Modifier.IDF)},
            )
        except UnexpectedResponse as exc:
            # Two pods starting at once both find no collection; the server
            # creates it for one and answers 409 to the other, which is fine.
            if exc.status_code != HTTPStatus.CONFLICT:
                raise
        self.keywords = True
        if self.server:  # local mode ignores payload indexes (and warns)
            await self.client.create_payload_index(
                self.collection, "document_id", field_schema=models.PayloadSchemaType.KEYWORD
            )
            await self.client.create_payload_index(
                self.collection, "sample", field_schema=models.PayloadSchemaType.BOOL
            )
            await self.client.create_payload_index(
                self.collection, "version", field_schema=models.PayloadSchemaType.INTEGER
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

    async def replace_document(
        self, chunks: list[Chunk], vectors: list[list[float]], keywords: list[SparseVector] | None = None
    ) -> int:
        """Index a document's chunks (one version, written in one request)
        beside its earlier version, then remove that. Returns the chunk count."""
        if not chunks:
            return 0
        document_id = chunks[0].document_id
        async with outage_as_transient():
            await self._upsert_replacing(document_id, chunks, vectors, keywords)
        return len(chunks)

    def _vectors(self, dense: list[float], keywords: SparseVector | None) -> models.VectorStruct:
        if keywords is None or not self.keywords:
            return {DENSE: dense}
        return {DENSE: dense, KEYWORDS: models.SparseVector(indices=keywords.indices, values=keywords.values)}

    async def _upsert_replacing(
        self, document_id: str, chunks: list[Chunk], vectors: list[list[float]], keywords: list[SparseVector] | None
    ) -> None:
        sparse: list[SparseVector | None] = list(keywords) if keywords is not None else [None] * len(chunks)
        await self.client.upsert(
            self.collection,
            points=[
                models.PointStruct(
                    id=chunk.point_id,
                    vector=self._vectors(vector, terms),
                    payload=payload_of(chunk),
                )
                for chunk, vector, terms in zip(chunks, vectors, sparse, strict=True)
            ],
        )
        # Then the earlier versions. Until they are gone a reader may find
        # chunks of both; `search` keeps only each document's newest version,
        # so no reader sees both versions, nor neither.
        await self.client.delete(
            self.collection,
            points_selector=models.FilterSelector(
                filter=models.Filter(
                    must=[
                        models.FieldCondition(key="document_id", match=models.MatchValue(value=document_id)),
                        # Older versions only (and chunks from before versions): a
                        # replica indexing the same event again writes the same
                        # ids, and one indexing a newer event keeps its own.
                        models.Filter(
                            should=[
                                models.FieldCondition(key="version", range=models.Range(lt=chunks[0].version)),
                                models.IsEmptyCondition(is_empty=models.PayloadField(key="version")),
                            ]
                        ),
                    ],
                )
            ),
        )

    async def delete_document(self, document_id: str) -> None:
        async with outage_as_transient():
            await self.client.delete(
                self.collection, points_selector=models.FilterSelector(filter=self._document_filter(document_id))
            )

    def _samples(self, known: Sequence[str]) -> models.Filter:
        """Sample chunks: marked so, or (indexed before the mark) of the
        sample documents' known ids."""
        conditions: list[models.Condition] = list(_SAMPLES.must or [])  # type: ignore[arg-type]
        if known:
            conditions.append(models.FieldCondition(key="document_id", match=models.MatchAny(any=list(known))))
        return models.Filter(should=conditions)

    async def delete_samples(self, known: Sequence[str] = ()) -> None:
        async with outage_as_transient():
            await self.client.delete(
                self.collection, points_selector=models.FilterSelector(filter=self._samples(known))
            )

    async def count(
        self, document_id: str | None = None, *, samples: bool | None = None, known: Sequence[str] = ()
    ) -> int:
        """Chunks of one document, or of all; `samples=False` leaves the
        sample knowledge (and the `known` sample ids) out, `True` counts only it."""
        conditions: models.Filter | None = self._document_filter(document_id) if document_id else None
        if samples is not None:
            conditions = self._samples(known) if samples else models.Filter(must_not=[self._samples(known)])
        result = await self.client.count(self.collection, count_filter=conditions, exact=True)
        return result.count

    async def search(
        self,
        vector: list[float],
        limit: int,
        min_score: float,
        keywords: SparseVector | None = None,
        keyword_weight: float = 1.0,
    ) -> list[Hit]:
        """The `limit` best passages: by dense similarity alone, or, given the
        question's `keywords`, by similarity plus `keyword_weight` times the
        keyword (BM25) score relative to the best one (each over `limit` * 4
        candidates). Every hit's score is its cosine similarity; those under
        `min_score` are left out."""
        hybrid = keywords is not None and self.keywords and bool(keywords.indices)
        # Deeper than asked: a document being replaced may fill places twice.
        depth = limit * 4 if hybrid else limit * 2
        requests = [models.QueryRequest(query=vector, limit=depth, with_payload=True)]
        if hybrid:
            assert keywords is not None
            requests.append(
                models.QueryRequest(
                    query=models.SparseVector(indices=keywords.indices, values=keywords.values),
                    using=KEYWORDS,
                    limit=depth,
                    with_payload=True,
                    with_vector=[DENSE],
                )
            )
        async with outage_as_transient():
            responses = await self.client.query_batch_points(self.collection, requests=requests)
        by_keywords = responses[1].points if hybrid else []
        return fused(vector, responses[0].points, by_keywords, limit, min_score, keyword_weight)

    async def ready(self) -> bool:
        await self.client.get_collections()
        return True

    async def close(self) -> None:
        await self.client.close()

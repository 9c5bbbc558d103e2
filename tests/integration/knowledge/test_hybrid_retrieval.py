"""Retrieval with the real embedding model and Qdrant's embedded engine."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
from qdrant_client import AsyncQdrantClient

from supportdesk_knowledge.base import KnowledgeBase
from supportdesk_knowledge.index import KnowledgeIndex
from supportdesk_knowledge.settings import KnowledgeSettings

DOCUMENTS = {
    "promise": (
        "Warranty",
        "Under the Trail Tested promise, Ridgeline repairs or replaces any pack with a manufacturing defect "
        "for 3 years.",
    ),
    "about": (
        "About us",
        "Our promise to you: every product we sell is tested on real trails by our staff before it reaches "
        "our shelves.",
    ),
    "ground": ("Shipping", "Ground shipping is used for kayaks and canoes and takes 8-12 business days."),
}


async def knowledge(path: str, embedder: Any, mode: str) -> KnowledgeBase:
    index = KnowledgeIndex(AsyncQdrantClient(path=path), "kb", embedder.dimension, server=False)
    await index.ensure_collection()
    kb = KnowledgeBase(KnowledgeSettings(qdrant_path=path, retrieval_mode=mode), embedder, index)
    for document_id, (title, text) in DOCUMENTS.items():
        await kb.add_document(document_id, title, text)
    return kb


@pytest.fixture
async def hybrid(tmp_path: Any, embedder: Any) -> AsyncIterator[KnowledgeBase]:
    kb = await knowledge(str(tmp_path / "hybrid"), embedder, "hybrid")
    yield kb
    await kb.close()


async def test_a_question_on_an_exact_name_finds_its_passage_where_similarity_alone_does_not(
    tmp_path: Any, embedder: Any, hybrid: KnowledgeBase
) -> None:
    question = "What does the Trail Tested promise cover?"
    dense = await knowledge(str(tmp_path / "dense"), embedder, "dense")
    try:
        # The failure hybrid retrieval is for: a generic passage wins on similarity.
        assert (await dense.search(question, 3, 0.0))[0].document_id == "about"
    finally:
        await dense.close()
    hits = await hybrid.search(question, 3, 0.0)
    assert hits[0].document_id == "promise"
    # Scores stay the cosine similarity, whichever signal ranked the passage.
    assert hits[0].score < next(h.score for h in hits if h.document_id == "about")


async def test_hybrid_keeps_what_similarity_already_finds(hybrid: KnowledgeBase) -> None:
    hits = await hybrid.search("How long does delivery of a canoe take?", 3, 0.0)
    assert hits[0].document_id == "ground"


async def test_chunks_are_found_with_their_headings(tmp_path: Any, embedder: Any, hybrid: KnowledgeBase) -> None:
    text = "# Returns\n\n## Size exchanges\n\nSwap for another size within 45 days, free of charge."
    await hybrid.add_document("returns", "Returns", text)
    hit = (await hybrid.search("How long do I have for a size exchange?", 1, 0.0))[0]
    assert (hit.document_id, hit.section) == ("returns", "Returns › Size exchanges")
    assert hit.text == "Swap for another size within 45 days, free of charge."

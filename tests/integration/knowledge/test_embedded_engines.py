"""Both embedded engines (QDRANT_EMBEDDED: Qdrant Edge and qdrant-client's
local mode) behave alike: versions swapped, documents and samples removed,
counts, hybrid retrieval, and the data kept across a restart."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from supportdesk_knowledge.base import KnowledgeBase, open_index
from supportdesk_knowledge.edge import EdgeIndex, IndexInUse
from supportdesk_knowledge.settings import KnowledgeSettings

pytestmark = pytest.mark.integration

ENGINES = ["edge", "local"]


async def opened(folder: Path, embedder: Any, engine: str, **options: Any) -> KnowledgeBase:
    settings = KnowledgeSettings(qdrant_path=str(folder), qdrant_embedded=engine, **options)
    index = open_index(settings, embedder.dimension)
    await index.ensure_collection()
    return KnowledgeBase(settings, embedder, index)


@pytest.fixture(params=ENGINES)
async def kb(request: pytest.FixtureRequest, tmp_path: Path, embedder: Any) -> AsyncIterator[KnowledgeBase]:
    knowledge = await opened(tmp_path / "qdrant", embedder, request.param, rag_chunk_tokens=40)
    yield knowledge
    await knowledge.close()


def version(tag: str, sections: int) -> str:
    return "\n\n".join(
        f"# Part {i}\n\nEdition {tag}: the store in region {i} opens at {i + 7} a.m. on weekdays."
        for i in range(sections)
    )


async def test_the_engine_is_chosen_by_setting(tmp_path: Path) -> None:
    edge = open_index(KnowledgeSettings(qdrant_path=str(tmp_path), qdrant_embedded="edge"), 384)
    assert isinstance(edge, EdgeIndex)
    assert edge.path == tmp_path / "edge" / "supportdesk_knowledge"  # apart from local mode's files
    local = open_index(KnowledgeSettings(qdrant_path=str(tmp_path), qdrant_embedded="local"), 384)
    assert not isinstance(local, EdgeIndex)
    await local.close()


async def test_a_new_version_replaces_the_old_and_a_document_can_be_removed(kb: KnowledgeBase) -> None:
    assert await kb.add_document("hours", "Store hours", version("A", 6)) == 6
    assert await kb.add_document("returns", "Returns", "Returns are accepted within 30 days of delivery.") == 1
    assert await kb.add_document("hours", "Store hours", version("B", 2)) == 2
    assert await kb.index.count("hours") == 2
    assert await kb.index.count() == 3
    hits = await kb.search("When does the store in region 1 open?", 10, 0.0)
    assert {h.text.split(":")[0] for h in hits if h.document_id == "hours"} == {"Edition B"}
    assert hits[0].section == "Part 1"
    assert hits[0].title == "Store hours"
    await kb.index.delete_document("hours")
    assert await kb.index.count() == 1
    assert {h.document_id for h in await kb.search("store opening hours", 10, 0.0)} == {"returns"}


async def test_a_reader_sees_one_version_while_it_is_replaced(kb: KnowledgeBase) -> None:
    await kb.add_document("hours", "Store hours", version("A", 6))
    seen: list[set[str]] = []
    swapping = True

    async def read() -> None:
        while swapping:
            hits = await kb.search("When does the store in region 1 open?", 10, 0.0)
            seen.append({h.text.split(":")[0] for h in hits if h.document_id == "hours"})
            await asyncio.sleep(0)

    reader = asyncio.create_task(read())
    for tag, sections in [("B", 2), ("C", 6), ("D", 2), ("E", 6)]:
        await kb.add_document("hours", "Store hours", version(tag, sections))
    swapping = False
    await reader
    assert seen
    assert all(len(editions) == 1 for editions in seen), [e for e in seen if len(e) != 1]
    assert await kb.index.count("hours") == 6


async def test_sample_knowledge_is_counted_and_removed_apart(kb: KnowledgeBase) -> None:
    await kb.add_document("sample-faq", "FAQ", "Gift cards never expire.", sample=True)
    await kb.add_document("old-sample", "Old FAQ", "Orders ship in two days.")  # indexed before the mark
    await kb.add_document("own", "Policies", "Store credit is valid for one year.")
    assert await kb.index.count(samples=True, known=["old-sample"]) == 2
    assert await kb.index.count(samples=False, known=["old-sample"]) == 1
    await kb.index.delete_samples(["old-sample"])
    assert await kb.index.count() == 1
    assert [h.sample for h in await kb.search("gift cards", 5, 0.0)] == [False]


async def test_hybrid_retrieval_finds_the_exact_name(tmp_path: Path, embedder: Any) -> None:
    for engine in ENGINES:
        kb = await opened(tmp_path / engine, embedder, engine, retrieval_mode="hybrid")
        try:
            await kb.add_document("promise", "Warranty", "Under the Trail Tested promise, packs are covered 3 years.")
            await kb.add_document(
                "about", "About us", "Our promise to you: every product we sell is tested on real trails."
            )
            hits = await kb.search("What does the Trail Tested promise cover?", 3, 0.0)
            assert hits[0].document_id == "promise", engine
        finally:
            await kb.close()


async def test_the_index_is_kept_across_a_restart(tmp_path: Path, embedder: Any) -> None:
    for engine in ENGINES:
        kb = await opened(tmp_path / engine, embedder, engine)
        await kb.add_document("returns", "Returns", "Returns are accepted within 30 days of delivery.")
        await kb.close()
        again = await opened(tmp_path / engine, embedder, engine)
        try:
            assert await again.index.count() == 1, engine
            assert (await again.search("how long do I have to return", 1, 0.0))[0].document_id == "returns"
            assert await again.index.ready()
        finally:
            await again.close()


async def test_an_index_kept_by_local_mode_is_copied_into_edge_once(tmp_path: Path, embedder: Any) -> None:
    folder = tmp_path / "qdrant"
    before = await opened(folder, embedder, "local", retrieval_mode="hybrid")
    await before.add_document("returns", "Returns", "Returns are accepted within 30 days of delivery.")
    await before.add_document("faq", "FAQ", "Under the Trail Tested promise, packs are covered 3 years.", sample=True)
    await before.close()
    after = await opened(folder, embedder, "edge", retrieval_mode="hybrid")
    try:
        assert await after.index.count() == 2
        assert await after.index.count(samples=True) == 1, "still marked as sample knowledge"
        # Vectors and keyword vectors both came along.
        assert (await after.search("how long do I have to return", 1, 0.0))[0].document_id == "returns"
        assert (await after.search("What does the Trail Tested promise cover?", 1, 0.0))[0].document_id == "faq"
        await after.index.delete_document("returns")
    finally:
        await after.close()
    again = await opened(folder, embedder, "edge")
    try:
        assert await again.index.count() == 1, "copied once, not again at each start"
    finally:
        await again.close()


async def test_a_second_process_on_the_same_folder_is_told_why_it_cannot_open_it(tmp_path: Path, embedder: Any) -> None:
    first = await opened(tmp_path, embedder, "edge")
    try:
        second = EdgeIndex(tmp_path / "edge", "supportdesk_knowledge", embedder.dimension)
        with pytest.raises(IndexInUse, match="another process"):
            await second.ensure_collection()
    finally:
        await first.close()

"""A document replaced while users ask about it: every reader sees its old
version or its new one, never both and never neither. Against Qdrant's REST
API (tests/e2e/qdrant_server.py, Qdrant's wire format over its local engine:
no Qdrant server installs here), so that reads really interleave with the
writes of a replacement."""

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from qdrant_client import AsyncQdrantClient

from devstack import free_port, http_ok, stop_process, wait_for
from supportdesk_knowledge.base import KnowledgeBase
from supportdesk_knowledge.index import KnowledgeIndex
from supportdesk_knowledge.settings import KnowledgeSettings

pytestmark = pytest.mark.integration

SERVER = Path(__file__).parents[2] / "e2e" / "qdrant_server.py"


def version(tag: str, sections: int) -> str:
    return "\n\n".join(
        f"# Part {i}\n\nEdition {tag}: the store in region {i} opens at {i + 7} a.m. on weekdays."
        for i in range(sections)
    )


def start_server(port: int, folder: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(SERVER), str(port), str(folder)])


@pytest.fixture
async def server_kb(tmp_path: Path, embedder: Any) -> AsyncIterator[KnowledgeBase]:
    port = free_port()
    process = start_server(port, tmp_path / "qdrant")
    client = AsyncQdrantClient(url=f"http://127.0.0.1:{port}", check_compatibility=False)
    try:
        wait_for(lambda: http_ok(f"http://127.0.0.1:{port}/"), 30, "the Qdrant REST server")
        index = KnowledgeIndex(client, "kb", embedder.dimension, server=True)
        await index.ensure_collection()
        yield KnowledgeBase(KnowledgeSettings(rag_chunk_tokens=40), embedder, index)
    finally:
        await client.close()
        stop_process(process)


async def test_readers_never_see_two_versions_or_none(server_kb: KnowledgeBase) -> None:
    assert await server_kb.add_document("hours", "Store hours", version("A", 6)) == 6
    seen: list[set[str]] = []
    swapping = True

    async def read() -> None:
        while swapping:
            hits = await server_kb.search("When does the store in region 1 open?", 10, 0.0)
            seen.append({h.text.split(":")[0] for h in hits if h.document_id == "hours"})

    reader = asyncio.create_task(read())
    # Versions of different lengths: positions of the longer one outlive a shorter one's writes.
    for tag, sections in [*(("BCDFGHIJ"[i], 2 + (i % 2) * 4) for i in range(8)), ("E", 6)]:
        await server_kb.add_document("hours", "Store hours", version(tag, sections))
        await asyncio.sleep(0.05)
    swapping = False
    await reader
    assert len(seen) >= 10, "the reader ran throughout"
    assert all(len(editions) == 1 for editions in seen), [e for e in seen if len(e) != 1]
    assert seen[-1] == {"Edition E"}
    assert await server_kb.index.count("hours") == 6, "no chunks of earlier versions are left"

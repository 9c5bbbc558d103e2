"""Agent and ingest wait for a Qdrant server that is still starting, instead
of crash-looping; one that never comes gives a clear error in time."""

import asyncio
import json
import re

import pytest
from qdrant_client import AsyncQdrantClient

from devstack import free_port
from supportdesk_knowledge.index import KnowledgeIndex, QdrantUnavailable


async def late_server(port: int, delay: float) -> asyncio.Server:
    """After `delay`, answers as a Qdrant server without the collection:
    just enough of its REST API for the start-up check and the creation."""
    await asyncio.sleep(delay)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        length = re.search(r"content-length: (\d+)", head, re.IGNORECASE)
        await reader.readexactly(int(length.group(1)) if length else 0)
        path = head.split(" ")[1].split("?")[0]
        if path.endswith("/exists"):
            result: object = {"exists": False}
        elif path.endswith("/index"):
            result = {"operation_id": 1, "status": "completed"}
        else:
            result = True
        body = json.dumps({"result": result, "status": "ok", "time": 0}).encode()
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        writer.write(head.encode() + body)
        await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", port)


async def test_start_up_waits_for_a_qdrant_that_is_still_starting() -> None:
    port = free_port()
    client = AsyncQdrantClient(url=f"http://127.0.0.1:{port}", timeout=2, check_compatibility=False)
    index = KnowledgeIndex(client, "kb", 384, server=True)
    starting = asyncio.create_task(late_server(port, 1.5))
    try:
        await asyncio.wait_for(index.ensure_collection_when_up(30), 30)
        assert starting.done(), "it returned before the server was up"
    finally:
        (await starting).close()
        await client.close()


async def test_a_qdrant_that_never_comes_gives_a_clear_error() -> None:
    client = AsyncQdrantClient(url=f"http://127.0.0.1:{free_port()}", timeout=1, check_compatibility=False)
    index = KnowledgeIndex(client, "kb", 384, server=True)
    with pytest.raises(QdrantUnavailable, match="not reachable after 2 s"):
        await asyncio.wait_for(index.ensure_collection_when_up(2), 30)
    await client.close()

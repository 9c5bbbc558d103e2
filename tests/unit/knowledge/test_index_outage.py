"""A Qdrant server that is down or failing is a transient outage (retried by
the consumers, then dead-lettered with the attempts), not a poison event; a
refusal stays what it is. Before, a connection error dead-lettered every
turn at once during a short Qdrant outage."""

import asyncio
import json

import pytest
from qdrant_client import AsyncQdrantClient
from qdrant_client.http.exceptions import UnexpectedResponse

from devstack import free_port
from supportdesk_knowledge.index import IndexOutage, KnowledgeIndex
from supportdesk_platform.kafka import TRANSIENT_ERRORS


async def answering(status: int) -> tuple[asyncio.Server, int]:
    """A server that answers every request with `status`."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = json.dumps({"status": {"error": "nope"}, "time": 0}).encode()
        head = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        writer.write(head.encode() + body)
        await writer.drain()
        writer.close()

    port = free_port()
    return await asyncio.start_server(answer, "127.0.0.1", port), port


def index_at(port: int) -> KnowledgeIndex:
    client = AsyncQdrantClient(url=f"http://127.0.0.1:{port}", timeout=2, check_compatibility=False)
    return KnowledgeIndex(client, "kb", 3, server=True)


async def test_an_unreachable_qdrant_is_a_transient_outage() -> None:
    index = index_at(free_port())
    with pytest.raises(IndexOutage) as raised:
        await index.search([0.1, 0.2, 0.3], 4, 0.3)
    assert isinstance(raised.value, TRANSIENT_ERRORS)
    with pytest.raises(IndexOutage):
        await index.delete_document("d1")
    await index.client.close()


@pytest.mark.parametrize(
    ("status", "outage"), [(503, True), (500, True), (429, True), (408, True), (404, False), (400, False)]
)
async def test_a_server_error_is_an_outage_and_a_refusal_is_not(status: int, outage: bool) -> None:
    server, port = await answering(status)
    index = index_at(port)
    try:
        with pytest.raises(IndexOutage if outage else UnexpectedResponse):
            await index.search([0.1, 0.2, 0.3], 4, 0.3)
    finally:
        await index.client.close()
        server.close()
        await server.wait_closed()

"""Two agent or ingest pods starting at once against one Qdrant server both
find no collection and both create it; the server answers the second with
409 Conflict. That must not crash the second pod."""

import httpx
import pytest
from qdrant_client.http.exceptions import UnexpectedResponse

from supportdesk_knowledge.index import KnowledgeIndex


class RacedServer:
    """A Qdrant server on which another pod created the collection between
    our existence check and our create call (as the real server answers)."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.payload_indexes: list[str] = []

    async def collection_exists(self, name: str) -> bool:
        return False

    async def create_collection(self, name: str, **_: object) -> bool:
        raise UnexpectedResponse(self.status, "Conflict", b'{"status":{"error":"already exists"}}', httpx.Headers())

    async def create_payload_index(self, name: str, field: str, **_: object) -> None:
        self.payload_indexes.append(field)


async def test_a_collection_created_by_another_pod_meanwhile_is_fine() -> None:
    server = RacedServer(409)
    index = KnowledgeIndex(server, "kb", 384, server=True)  # type: ignore[arg-type]
    await index.ensure_collection()
    assert server.payload_indexes == [
        "document_id",
        "sample",
        "version",
    ]  # idempotent on the server, so always asked for


async def test_other_server_errors_still_fail() -> None:
    index = KnowledgeIndex(RacedServer(500), "kb", 384, server=True)  # type: ignore[arg-type]
    with pytest.raises(UnexpectedResponse):
        await index.ensure_collection()

"""The upload topic as a public interface: documents published by another
producer (the example in docs/examples/publish_document.py, plain aiokafka
and JSON) are indexed by the real ingest worker from inline content, a
file:// reference under the shared root, an http:// reference and an s3://
reference to an allowed bucket; their title, URL and labels reach the hits;
the outcome is published on the status topic; what the worker must refuse
ends `failed` with the reason."""

import asyncio
import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from builders import S3Store, ingest_settings
from supportdesk_documents.registry import DocumentRegistry
from supportdesk_ingest.app import build_worker
from supportdesk_knowledge.base import KnowledgeBase
from supportdesk_knowledge.embedder import Embedder
from supportdesk_knowledge.index import KnowledgeIndex, open_client
from supportdesk_knowledge.settings import KnowledgeSettings

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).parents[3] / "docs" / "examples" / "publish_document.py"
RETURNS = "# Returns\n\n## Size exchanges\n\nSwap boots for another size within 45 days, free of charge.\n"
RENTALS = "Rental gear is due back before closing time on the last day; a late day costs one extra day's rate."
STORES = "<h1>Stores</h1><p>The Bend store opens at 9 a.m. on Saturdays and closes at 6 p.m.</p>"
REPAIRS = "Ski bindings are adjusted free of charge in every store, while you wait, within a year of purchase."


@pytest.fixture
def web(tmp_path: Path) -> Iterator[str]:
    """A loopback HTTP server of one folder (a help-centre export)."""
    folder = tmp_path / "web"
    folder.mkdir()
    (folder / "stores.html").write_text(STORES)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def publish(kafka_bootstrap: str, prefix: str, *args: str) -> subprocess.CompletedProcess[str]:
    # Awaited on the event loop, not waited for in threads: the loop's default
    # executor has cpu_count + 4 threads (6 on two CPUs), and the worker on the
    # same loop needs them for its embeddings and file and S3 reads; six
    # publishers waiting in them for its answer starved it.
    command = [sys.executable, str(EXAMPLE), "--bootstrap", kafka_bootstrap, "--prefix", prefix, "--timeout", "90"]
    process = await asyncio.create_subprocess_exec(
        *command, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with asyncio.timeout(120):
            stdout, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return subprocess.CompletedProcess(command, process.returncode, stdout.decode(), stderr.decode())


async def test_other_producers_feed_the_knowledge_base_through_the_upload_topic(
    kafka_bootstrap: str,
    redis_url: str,
    redis: Redis,
    unique: str,
    embedder: Embedder,
    tmp_path: Path,
    web: str,
    s3_store: S3Store,
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "rentals.txt").write_text(RENTALS)
    s3_store.client.put_object(Bucket="docs", Key="service/repairs.txt", Body=REPAIRS.encode())
    s3_store.client.put_object(Bucket="private", Key="secret.txt", Body=b"not for the index")
    (tmp_path / "secret.txt").write_text("not for the index")
    knowledge = KnowledgeSettings(qdrant_path=str(tmp_path / "qdrant"))
    index = KnowledgeIndex(open_client(knowledge), knowledge.qdrant_collection, embedder.dimension, server=False)
    await index.ensure_collection()
    kb = KnowledgeBase(knowledge, embedder, index)
    settings = ingest_settings(
        kafka_bootstrap,
        redis_url,
        unique,
        knowledge=knowledge,
        INGEST_SHARED_ROOT=str(shared),
        INGEST_FETCH_ALLOW_PRIVATE=True,  # the test's web server is on loopback
        INGEST_S3_ENDPOINT_URL=s3_store.endpoint,
        INGEST_S3_BUCKETS="docs",
    )
    worker = await build_worker(settings, knowledge=kb, redis=redis)
    await worker.start()
    try:
        (tmp_path / "returns.md").write_text(RETURNS)
        documents = [
            (
                *("--id", "cms:returns", "--file", str(tmp_path / "returns.md"), "--title", "Returns policy"),
                *("--url", "https://help.example.com/returns", "--meta", "product=boots", "--meta", "lang=en"),
            ),
            ("--id", "share:rentals", "--source", (shared / "rentals.txt").as_uri(), "--filename", "rentals.txt"),
            ("--id", "web:stores", "--source", f"{web}/stores.html", "--filename", "stores.html"),
            ("--id", "share:escape", "--source", (shared / ".." / "secret.txt").as_uri(), "--filename", "s.txt"),
            ("--id", "web:missing", "--source", f"{web}/nothing.html", "--filename", "nothing.html"),
            ("--id", "s3:repairs", "--source", "s3://docs/service/repairs.txt", "--filename", "repairs.txt"),
            ("--id", "s3:secret", "--source", "s3://private/secret.txt", "--filename", "secret.txt"),
        ]
        runs = await asyncio.gather(*(publish(kafka_bootstrap, unique, *d) for d in documents))
        outcomes = [run.stdout.strip() for run in runs]
        assert [run.returncode for run in runs] == [0, 0, 0, 1, 1, 0, 1], [r.stderr[-2000:] for r in runs]
        assert '"chunks": 1' in outcomes[0]
        assert "outside the shared root" in outcomes[3]
        assert "answered 404" in outcomes[4]
        assert "bucket private is not one the worker may read" in outcomes[6]

        hit = (await kb.search("How long do I have to exchange boots for another size?", 1, 0.0))[0]
        assert (hit.document_id, hit.title, hit.section) == (
            "cms:returns",
            "Returns policy",
            "Returns › Size exchanges",
        )
        assert hit.url == "https://help.example.com/returns"
        assert hit.metadata == {"product": "boots", "lang": "en"}
        assert (await kb.search("What if I return rented gear late?", 1, 0.0))[0].document_id == "share:rentals"
        assert (await kb.search("When does the Bend store open on Saturday?", 1, 0.0))[0].document_id == "web:stores"
        assert (await kb.search("Do you adjust ski bindings for free?", 1, 0.0))[0].document_id == "s3:repairs"

        # The worker made the status records the gateway would have made.
        registry = DocumentRegistry(redis, unique)
        records = {r.document_id: r for r in await registry.list()}
        assert records["cms:returns"].status == "indexed"
        assert records["cms:returns"].size == len(RETURNS.encode())
        assert records["share:escape"].status == "failed"
        assert "outside the shared root" in (records["share:escape"].error or "")
    finally:
        await worker.stop()
        await kb.close()

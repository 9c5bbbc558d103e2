"""Retrieval at scale, per embedded engine (performance goal 4).

    python tools/retrieval_bench.py            # BENCH_RETRIEVAL_CHUNKS=100000

For each engine (Qdrant Edge, qdrant-client's local mode): a fresh folder
with the sample knowledge really embedded and filler chunks on random unit
vectors up to the chunk count (a search costs the same whatever the vectors
hold), then 200 questions searched one at a time as the agent does (top 8,
no threshold). Reports the time to index the filler, the search alone (the
question's vector given) and the embedding plus search, p50/p99, and the
process's memory growth. Loopback-free: everything runs in this process.
"""

import asyncio
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from supportdesk_ingest.samples import sample_documents, sample_ids
from supportdesk_knowledge.base import KnowledgeBase, open_index
from supportdesk_knowledge.embedder import Embedder
from supportdesk_knowledge.index import Chunk
from supportdesk_knowledge.settings import KnowledgeSettings

QUESTIONS = [
    "How long does standard shipping take?",
    "Can I return an item after 30 days?",
    "How do I reset my password?",
    "Do you ship to Canada?",
    "What is your warranty on backpacks?",
    "How can I track my order?",
    "Can I change my delivery address?",
    "How do refunds work?",
]
SEARCHES = 200
BATCH = 1000


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def measure(engine: str, chunks: int, embedder: Embedder, folder: Path) -> dict[str, float]:
    settings = KnowledgeSettings(qdrant_path=str(folder), qdrant_embedded=engine)
    index = open_index(settings, embedder.dimension)
    await index.ensure_collection()
    kb = KnowledgeBase(settings, embedder, index)
    began_rss = rss_mib()
    try:
        for document_id, (title, body) in zip(sample_ids(), sample_documents(), strict=True):
            await kb.add_document(document_id, title, body, sample=True, version=1)
        rng = np.random.default_rng(7)
        words = np.array(["order", "parcel", "invoice", "courier", "warranty", "account", "basket", "voucher"])
        began = time.perf_counter()
        for start in range(0, chunks, BATCH):
            vectors = rng.normal(size=(BATCH, embedder.dimension)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            batch = [
                Chunk(f"filler-{start}", "Filler", i, " ".join(rng.choice(words, 40)), version=1) for i in range(BATCH)
            ]
            await kb.index.replace_document(batch, vectors.tolist())
        indexing = time.perf_counter() - began
        questions = [f"{QUESTIONS[i % len(QUESTIONS)]} (case {i})" for i in range(SEARCHES)]
        vectors = await embedder.encode(questions)
        search, whole = [], []
        for vector in vectors:
            began = time.perf_counter()
            await kb.index.search(vector.tolist(), 8, 0.0)
            search.append(time.perf_counter() - began)
        for question in questions:
            began = time.perf_counter()
            await kb.search(question + " again", 8, 0.0)
            whole.append(time.perf_counter() - began)
        return {
            "chunks": await kb.index.count(),
            "indexing_seconds": indexing,
            "search_p50": percentile(search, 0.5),
            "search_p99": percentile(search, 0.99),
            "whole_p50": percentile(whole, 0.5),
            "whole_p99": percentile(whole, 0.99),
            "rss_growth": rss_mib() - began_rss,
        }
    finally:
        await kb.close()


def main() -> None:
    chunks = int(os.environ.get("BENCH_RETRIEVAL_CHUNKS", "100000"))
    engines = os.environ.get("BENCH_ENGINES", "edge,local").split(",")
    embedder = Embedder()
    rows = {}
    with tempfile.TemporaryDirectory() as scratch:
        for engine in engines:
            rows[engine] = asyncio.run(measure(engine, chunks, embedder, Path(scratch) / engine))
            print(f"{engine}: {rows[engine]}", flush=True)
    print(f"\n### Retrieval at {chunks:,} filler chunks (+ the sample knowledge), {SEARCHES} searches, top 8\n")
    print(
        "| engine | chunks | index the filler (s) | search p50 / p99 (ms) | embed + search p50 / p99 (ms) "
        "| RSS growth (MiB) |"
    )
    print("|---|---|---|---|---|---|")
    for engine, r in rows.items():
        print(
            f"| {engine} | {r['chunks']:,.0f} | {r['indexing_seconds']:.1f} | {r['search_p50']:.1f} / "
            f"{r['search_p99']:.1f} | {r['whole_p50']:.1f} / {r['whole_p99']:.1f} | {r['rss_growth']:.0f} |"
        )
    print(f"\nPeak RSS of the process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()

"""Concurrent callers share the model's calls (micro-batching), short texts
are remembered, and every caller gets exactly its own rows, in order."""

import asyncio
from typing import Any, cast

import numpy as np

from supportdesk_knowledge.base import KnowledgeBase
from supportdesk_knowledge.embedder import BULK_BATCH_TEXTS, Embedder
from supportdesk_knowledge.index import KnowledgeIndex
from supportdesk_knowledge.settings import KnowledgeSettings


async def test_concurrent_requests_are_encoded_together_and_each_gets_its_rows(embedder: Any) -> None:
    model: Embedder = embedder
    asked = [[f"question number {i} about shipping {j}" for j in range(i % 3 + 1)] for i in range(12)]
    calls = model.model_calls
    answers = await asyncio.gather(*(model.encode(texts) for texts in asked))
    assert model.model_calls - calls <= 2  # twelve callers, one or two calls of the model
    for texts, vectors in zip(asked, answers, strict=True):
        assert vectors.shape == (len(texts), model.dimension)
        alone = model.encode_sync(texts)
        assert np.allclose(vectors, alone, atol=1e-5)  # the same rows it would get alone


async def test_short_texts_are_remembered_and_long_ones_are_not(embedder: Any) -> None:
    model: Embedder = embedder
    short, long = "How long does standard shipping take, really?", "word " * 200
    await model.encode([short, long])
    calls, hits = model.model_calls, model.cache_hits
    again = await model.encode([short])
    assert model.model_calls == calls  # from memory
    assert model.cache_hits == hits + 1
    assert np.allclose(again[0], model.encode_sync([short])[0], atol=1e-5)
    await model.encode([long])
    assert model.model_calls == calls + 1


async def test_a_caller_that_gives_up_does_not_break_the_others(embedder: Any) -> None:
    model: Embedder = embedder
    given_up = asyncio.create_task(model.encode(["a turn that is interrupted mid-way"]))
    kept = asyncio.create_task(model.encode(["a turn that goes on to its answer"]))
    await asyncio.sleep(0)
    given_up.cancel()
    vectors = await kept
    assert vectors.shape == (1, model.dimension)
    assert given_up.cancelled()


async def test_nothing_to_encode_is_an_empty_matrix(embedder: Any) -> None:
    model: Embedder = embedder
    assert (await model.encode([])).shape == (0, model.dimension)


async def test_a_documents_chunks_are_neither_remembered_nor_looked_up(embedder: Any) -> None:
    """Chunks are embedded once: caching them would only hold memory."""
    model: Embedder = embedder
    chunk = "Standard shipping takes 3-5 business days, express 1-2."
    size, calls = len(model._cache), model.model_calls
    await model.encode([chunk], bulk=True)
    await model.encode([chunk], bulk=True)
    assert (len(model._cache), model.model_calls) == (size, calls + 2)


async def test_a_remembered_vector_does_not_hold_its_whole_batch(embedder: Any) -> None:
    model: Embedder = embedder
    texts = [f"a short question {i} about refunds" for i in range(40)]
    await model.encode(texts)
    assert all(model._cache[text].base is None for text in texts)  # copies, not views of the 40-row batch


async def test_chat_texts_go_before_a_documents_chunks(embedder: Any) -> None:
    """Waiting together, a turn's texts are encoded first and never in one
    call with a document's chunks (a long call would hold the turn)."""
    model: Embedder = embedder
    finished: list[str] = []

    async def encode(name: str, texts: list[str], bulk: bool) -> None:
        await model.encode(texts, bulk=bulk)
        finished.append(name)

    calls = model.model_calls
    busy = asyncio.create_task(encode("first", ["something to keep the model busy " * 20], True))
    await asyncio.sleep(0)
    chunks = asyncio.create_task(encode("chunks", ["a document's chunk " * 30] * 8, True))
    await asyncio.sleep(0)
    question = asyncio.create_task(encode("question", ["What is the refund policy, quickly?"], False))
    await asyncio.gather(busy, chunks, question)
    assert finished == ["first", "question", "chunks"]
    assert model.model_calls - calls == 3


def test_tokens_are_counted_as_the_models_tokenizer_counts_them(embedder: Any) -> None:
    model: Embedder = embedder
    texts = ["Standard shipping takes 3-5 business days.", "Naïve café – déjà vu!", "", "word " * 300]
    expected = [len(model.model.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
    assert [model.count_tokens(t) for t in texts] == expected
    assert model.count_tokens_batch(texts) == expected


async def test_a_document_is_counted_while_the_model_encodes(embedder: Any) -> None:
    """Counting has a tokenizer of its own: cutting a document never waits
    for a model call, nor holds one."""
    model: Embedder = embedder
    encoding = asyncio.create_task(model.encode(["a long chunk of a document " * 40] * 16, bulk=True))
    await asyncio.sleep(0)
    counts = await asyncio.gather(
        *(asyncio.to_thread(model.count_tokens_batch, ["How long is shipping?"] * 50) for _ in range(4))
    )
    assert not encoding.done()
    assert all(c == counts[0] for c in counts)
    await encoding


async def test_a_documents_chunks_are_encoded_in_small_batches_of_like_lengths_and_come_back_in_order(
    embedder: Any,
) -> None:
    """A chat text waits for at most one small call; each row is still its own text's."""
    model: Embedder = embedder
    kb = KnowledgeBase(KnowledgeSettings(), model, cast(KnowledgeIndex, None))
    texts = [f"chunk {i} about returns " + "and exchanges " * (i * 7 % 23) for i in range(2 * BULK_BATCH_TEXTS + 3)]
    calls = model.model_calls
    vectors = await kb._embed_batches(texts)
    assert model.model_calls - calls == 3
    assert np.allclose(vectors, model.encode_sync(texts), atol=1e-5)

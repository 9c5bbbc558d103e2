"""Passages outside the shared index (a user's attachments): few enough to
rank exactly, in memory, on the same cosine similarity as the index."""

import base64
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from supportdesk_knowledge.index import Hit


@dataclass(frozen=True)
class PrivatePassage:
    document_id: str
    title: str
    text: str
    vector: str
    """`encoded`: base64 of the normalised embedding, little-endian float32."""


def encoded(vector: np.ndarray) -> str:
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()


def decoded(vector: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(vector), dtype="<f4")


def ranked(query: np.ndarray, passages: Sequence[PrivatePassage], limit: int, min_score: float) -> list[Hit]:
    """The `limit` passages most similar to `query` (both normalised, so the
    dot product is the cosine), at or above `min_score`. A passage whose
    vector has another dimension (another embedding model) is left out."""
    usable = [(p, v) for p in passages if (v := decoded(p.vector)).shape == query.shape]
    if not usable:
        return []
    scores = np.stack([v for _, v in usable]) @ np.asarray(query, dtype=np.float32)
    order = np.argsort(-scores)[:limit]
    return [
        Hit(usable[i][0].document_id, usable[i][0].title, usable[i][0].text, float(scores[i]), attachment=True)
        for i in order
        if scores[i] >= min_score
    ]

"""Passages outside the shared index (a user's attachments) are ranked on the
same cosine similarity as the index, exactly, and only by vectors of the
query's own model."""

import numpy as np

from supportdesk_knowledge.private import PrivatePassage, decoded, encoded, ranked


def unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def passage(name: str, vector: np.ndarray) -> PrivatePassage:
    return PrivatePassage("a1", "slip", name, encoded(vector))


def test_vectors_survive_their_encoding() -> None:
    vector = unit(0.3, -0.2, 0.9)
    assert np.array_equal(decoded(encoded(vector)), vector)


def test_ranked_by_similarity_above_the_floor_and_within_the_limit() -> None:
    query = unit(1, 0, 0)
    close, middling, far = (
        passage("close", unit(1, 0.1, 0)),
        passage("mid", unit(1, 1, 0)),
        passage("far", unit(0, 1, 0)),
    )
    hits = ranked(query, [far, middling, close], limit=5, min_score=0.5)
    assert [h.text for h in hits] == ["close", "mid"]
    assert all(h.attachment for h in hits)
    assert hits[0].score > hits[1].score >= 0.5
    assert [h.text for h in ranked(query, [far, middling, close], limit=1, min_score=0.0)] == ["close"]


def test_a_vector_of_another_model_is_left_out() -> None:
    query = unit(1, 0, 0)
    assert ranked(query, [passage("other model", unit(1, 0, 0, 0))], limit=3, min_score=0.0) == []
    assert ranked(query, [], limit=3, min_score=0.0) == []

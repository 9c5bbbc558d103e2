"""The keyword half of hybrid retrieval: BM25 as sparse vectors.

A chunk's sparse vector holds, for each of its terms, BM25's saturated term
frequency; Qdrant multiplies in each term's IDF over the collection (the
sparse vector's IDF modifier), so a query's vector is just its terms at 1.0.
The same code runs in the embedded local mode and on a Qdrant server, and a
short exact term ("Trail Tested promise", "ground shipping") weighs what
it should, which dense similarity alone does not guarantee.

Terms are lower-cased words with a light suffix folding ("exchanges" and
"exchange" are one term) and pairs of neighbouring words, hashed to 31-bit
ids: no vocabulary to keep in step between ingest and agent replicas.
"""

import itertools
import re
import zlib
from collections import Counter
from dataclasses import dataclass

_WORD = re.compile(r"[0-9]+(?:[.,][0-9]+)*|[^\W\d_]+(?:'[^\W\d_]+)?")
# Words that carry no topic: counting them would only add noise to the scores.
_STOP_WORDS = """
a about above after again against all am an and any are as at be because been before being below between both
but by can could did do does doing down during each few for from further had has have having he her here hers
him his how i if in into is it its itself just me more most my no nor not of off on once only or other our
ours out over own same she should so some such than that the their theirs them then there these they this
those through to too under until up very was we were what when where which while who whom why will with would
you your yours yourself i'm i've you're it's don't doesn't can't won't isn't please hi hello thanks thank
"""
STOP_WORDS = frozenset(_STOP_WORDS.split())


def _fold(word: str) -> str:
    """A light English stemmer: plurals, -ing, -ed and a final e, enough to
    meet "exchanges"/"exchanged"/"exchange" and "shipped"/"shipping"/"ships"
    in one term."""
    if word.endswith("'s"):
        word = word[:-2]
    if len(word) <= 3 or word.isdigit():
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("es") and word[:-2].endswith(("s", "x", "z", "ch", "sh")):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            # "shipping" -> "shipp" -> "ship": the consonant doubled before the ending.
            if word[-1] == word[-2] and word[-1] not in "lsz":
                word = word[:-1]
            break
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    return word


def terms(text: str) -> list[str]:
    words = (w.lower() for w in _WORD.findall(text.replace("\u2019", "'")))
    # "what's" is "what": a stop word with its 's is still one.
    return [_fold(w) for w in words if w.removesuffix("'s") not in STOP_WORDS]


def with_pairs(found: list[str]) -> list[str]:
    """The terms and each pair of neighbours ("trail test"): a name of two or
    three words ("Trail Tested promise", "ground shipping") then matches as a
    name, not only as words that also occur apart elsewhere."""
    return found + [f"{a} {b}" for a, b in itertools.pairwise(found)]


def term_id(term: str) -> int:
    return zlib.crc32(term.encode()) & 0x7FFFFFFF


@dataclass(frozen=True)
class SparseVector:
    indices: list[int]
    values: list[float]


@dataclass(frozen=True)
class KeywordEncoder:
    """BM25's term-frequency part (k1, b) with a fixed average length: the
    collection's true average would change every chunk's vector as documents
    come and go, for a difference BM25 barely feels."""

    k1: float = 1.2
    b: float = 0.75
    average_terms: float = 60.0

    def document(self, text: str) -> SparseVector:
        found = terms(text)
        counts = Counter(term_id(t) for t in with_pairs(found))
        norm = self.k1 * (1 - self.b + self.b * len(found) / self.average_terms)
        ids = sorted(counts)
        return SparseVector(ids, [counts[i] * (self.k1 + 1) / (counts[i] + norm) for i in ids])

    def query(self, text: str) -> SparseVector:
        ids = sorted({term_id(t) for t in with_pairs(terms(text))})
        return SparseVector(ids, [1.0] * len(ids))

"""Splits documents into overlapping, sentence-aligned chunks."""

import re

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_PARAGRAPH = re.compile(r"\n\s*\n")


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def chunk_text(text: str, size: int = 800, overlap: int = 120) -> list[str]:
    """Packs sentences into chunks of about `size` characters; consecutive
    chunks share up to `overlap` characters of whole sentences so a fact cut
    at a boundary still appears whole in one chunk."""
    sentences: list[str] = []
    for paragraph in _PARAGRAPH.split(text):
        paragraph = " ".join(paragraph.split())
        for sentence in split_sentences(paragraph):
            # A sentence longer than a chunk is cut hard rather than dropped.
            sentences += [sentence[i : i + size] for i in range(0, len(sentence), size)]
    chunks: list[str] = []
    current: list[str] = []
    length = 0
    for sentence in sentences:
        if current and length + len(sentence) + 1 > size:
            chunks.append(" ".join(current))
            carried: list[str] = []
            carried_len = 0
            for previous in reversed(current):
                if carried_len + len(previous) > overlap:
                    break
                carried.insert(0, previous)
                carried_len += len(previous) + 1
            current, length = carried, carried_len
        current.append(sentence)
        length += len(sentence) + 1
    if current:
        chunks.append(" ".join(current))
    return chunks

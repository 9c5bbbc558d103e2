import itertools

from supportdesk_knowledge.chunking import chunk_text, split_sentences


def test_sentences_split_on_terminal_punctuation() -> None:
    assert split_sentences("One. Two! Three? 4 items.") == ["One.", "Two!", "Three?", "4 items."]


def test_chunks_respect_size_and_keep_every_sentence() -> None:
    sentences = [f"Sentence number {i} says something useful." for i in range(60)]
    chunks = chunk_text(" ".join(sentences), size=200, overlap=50)
    assert len(chunks) > 5
    assert all(len(c) <= 200 for c in chunks)
    joined = " ".join(chunks)
    assert all(s in joined for s in sentences)


def test_consecutive_chunks_overlap() -> None:
    chunks = chunk_text(" ".join(f"Fact {i} is here." for i in range(40)), size=120, overlap=40)
    for first, second in itertools.pairwise(chunks):
        assert first.split(". ")[-1].rstrip(".") in second


def test_overlong_sentence_is_cut_not_dropped() -> None:
    text = "x" * 1000
    chunks = chunk_text(text, size=300, overlap=0)
    assert "".join(chunks) == text


def test_empty_text_gives_no_chunks() -> None:
    assert chunk_text("   \n\n  ") == []

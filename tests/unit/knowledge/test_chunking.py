import itertools
from collections.abc import Sequence

from supportdesk_knowledge.chunking import Passage, answer_units, approximate_tokens, chunk_document, split_sentences


def words(text: str) -> int:
    """A token per word: sizes in the tests are easy to reason about."""
    return len(text.split())


def test_sentences_split_on_terminal_punctuation() -> None:
    assert split_sentences("One. Two! Three? 4 items.") == ["One.", "Two!", "Three?", "4 items."]


def test_sentences_are_not_cut_after_an_abbreviation() -> None:
    text = "Orders placed by 1 p.m. Pacific Time ship today. Call ext. 5 or e.g. Chat. Then wait."
    assert split_sentences(text) == [
        "Orders placed by 1 p.m. Pacific Time ship today.",
        "Call ext. 5 or e.g. Chat.",
        "Then wait.",
    ]


def test_chunks_respect_the_token_budget_and_keep_every_sentence() -> None:
    sentences = [f"Sentence number {i} says something useful." for i in range(60)]
    chunks = chunk_document(" ".join(sentences), words, max_tokens=30, overlap_tokens=8)
    assert len(chunks) > 5
    assert all(words(c.text) <= 30 for c in chunks)
    joined = " ".join(c.text for c in chunks)
    assert all(s in joined for s in sentences)


def test_consecutive_chunks_of_prose_overlap() -> None:
    chunks = chunk_document(" ".join(f"Fact {i} is here." for i in range(40)), words, max_tokens=20, overlap_tokens=8)
    for first, second in itertools.pairwise(chunks):
        assert split_sentences(first.text)[-1] in second.text


def test_overlong_sentence_is_cut_not_dropped() -> None:
    text = " ".join(f"w{i}" for i in range(100))
    chunks = chunk_document(text, words, max_tokens=30, overlap_tokens=0)
    assert " ".join(c.text for c in chunks) == text
    assert all(words(c.text) <= 30 for c in chunks)


def test_empty_text_gives_no_chunks() -> None:
    assert chunk_document("   \n\n  ") == []


def test_chunks_carry_their_heading_path_and_never_cross_a_heading() -> None:
    text = (
        "# Shipping\n\nWe ship fast.\n\n## Ground shipping\n\nGround takes 8-12 days.\n\n# Returns\n\nWithin 30 days."
    )
    assert chunk_document(text, words) == [
        Passage("Shipping", "We ship fast."),
        Passage("Shipping › Ground shipping", "Ground takes 8-12 days."),
        Passage("Returns", "Within 30 days."),
    ]


def test_a_list_stays_with_its_lead_in_even_when_cut() -> None:
    text = "To exchange a size:\n- Open your order\n- Choose **Exchange**\n  and the new size\n- Ship it back"
    whole = chunk_document(text, words)
    assert whole == [
        Passage("", "To exchange a size:\n- Open your order\n- Choose Exchange and the new size\n- Ship it back")
    ]
    parts = chunk_document(text, words, max_tokens=12, overlap_tokens=0)
    assert len(parts) > 1
    assert all(p.text.startswith("To exchange a size:\n- ") for p in parts)


def test_table_rows_are_whole_and_name_their_columns() -> None:
    text = (
        "Plans:\n\n| Plan | Price | Returns |\n|---|---:|---|\n"
        "| Summit | $0 | 60 days |\n| Summit Plus | $9.99 | 90 days |"
    )
    chunks = chunk_document(text, words, max_tokens=12, overlap_tokens=4)
    rows = [line for c in chunks for line in c.text.split("\n")]
    assert "Plan: Summit · Price: $0 · Returns: 60 days" in rows
    assert "Plan: Summit Plus · Price: $9.99 · Returns: 90 days" in rows


def test_batched_counting_cuts_the_same_chunks_counting_each_text_once() -> None:
    """A long document's texts are counted in two batched calls (its blocks,
    then the units of those over size), none of them twice."""
    text = (
        "# Returns\n\n"
        + " ".join(f"Fact {i} about returns is stated here." for i in range(40))
        + "\n\nThese items are final sale:\n"
        + "\n".join(f"- item {i} of the list" for i in range(12))
        + "\n\n## Shipping\n\nShort section."
    )
    counted: list[str] = []
    batches: list[int] = []

    def one(text: str) -> int:
        counted.append(text)
        return words(text)

    def many(texts: Sequence[str]) -> list[int]:
        batches.append(len(texts))
        counted.extend(texts)
        return [words(t) for t in texts]

    expected = chunk_document(text, words, max_tokens=30, overlap_tokens=8)
    assert chunk_document(text, one, max_tokens=30, overlap_tokens=8, count_batch=many) == expected
    assert len(batches) == 2
    assert len(counted) == len(set(counted))


def test_the_approximate_counter_is_close_to_word_pieces() -> None:
    assert 10 <= approximate_tokens("How long does express shipping take to Alaska and Hawaii?") <= 16


def test_answer_units_keep_what_they_cannot_be_read_without() -> None:
    text = (
        "These items are final sale:\n"
        "- opened fuel canisters;\n"
        "- custom-cut rope\n"
        "The Beacon 400 headlamp is covered for 2 years. Its battery is covered for 1 year.\n"
        "Plan: Summit · Price: $49"
    )
    units = answer_units(text)
    # The lead-in answers nothing alone: it goes with each of its items.
    assert [u.text for u in units] == [
        "- opened fuel canisters;",
        "- custom-cut rope",
        "The Beacon 400 headlamp is covered for 2 years.",
        "Its battery is covered for 1 year.",
        "Plan: Summit · Price: $49",
    ]
    assert units[0].quoted == "These items are final sale: opened fuel canisters."
    assert units[1].quoted == "These items are final sale: custom-cut rope."
    # "Its" needs the sentence before it; a sentence that names its subject does not.
    assert units[3].quoted == "The Beacon 400 headlamp is covered for 2 years. Its battery is covered for 1 year."
    assert units[2].quoted == units[2].text
    assert units[4].quoted == "Plan: Summit · Price: $49"

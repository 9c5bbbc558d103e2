from supportdesk_knowledge.keywords import KeywordEncoder, term_id, terms, with_pairs


def test_terms_fold_plurals_and_verb_endings_and_skip_stop_words() -> None:
    assert terms("What about size exchanges?") == terms("size exchange")
    assert terms("shipped") == terms("shipping") == terms("ships") == ["ship"]
    assert terms("How do I reset the password") == ["reset", "password"]
    assert terms("Class glass") == ["class", "glass"]  # -ss is not a plural


def test_numbers_are_terms() -> None:
    assert terms("Orders over $75 ship in 5-7 days") == ["order", "75", "ship", "5", "7", "day"]


def test_a_document_vector_saturates_repeated_terms_and_a_query_counts_each_once() -> None:
    encoder = KeywordEncoder()
    vector = encoder.document("ground shipping ground ground")
    weights = dict(zip(vector.indices, vector.values, strict=True))
    assert weights[term_id("ground")] > weights[term_id("ship")]
    assert weights[term_id("ground")] < 3 * weights[term_id("ship")]  # BM25 saturation, not a count
    query = encoder.query("ground ground shipping?")
    expected = {term_id("ground"), term_id("ship"), term_id("ground ground"), term_id("ground ship")}
    assert sorted(query.indices) == sorted(expected)
    assert query.values == [1.0] * 4


def test_neighbouring_words_are_a_term_of_their_own() -> None:
    assert with_pairs(terms("the Trail Tested promise")) == ["trail", "test", "promis", "trail test", "test promis"]


def test_one_term_for_a_word_however_it_ends_or_is_typed() -> None:
    assert terms("size") == terms("sizes") == terms("sizing")
    assert terms("case") == terms("cases")
    assert terms("don\u2019t ship") == terms("don't ship") == ["ship"]


def test_a_stop_word_with_its_apostrophe_s_is_still_a_stop_word() -> None:
    # "What's" was kept as the term "what", matching every passage that says "what".
    assert terms("What's the Wi-Fi password?") == terms("the Wi-Fi password?")
    assert terms("Ridgeline's revenue") == terms("Ridgeline revenue")

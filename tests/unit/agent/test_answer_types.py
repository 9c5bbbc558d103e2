"""Expected answer types: what a question asks for, and which sentences hold it."""

import pytest

from supportdesk_agent.answer_types import AnswerType, expected, holds


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("How much does the Beacon 400 headlamp cost?", AnswerType.MONEY),
        ("Do you sell electric bikes, and how much are they?", AnswerType.MONEY),
        ("What do you charge for express delivery?", AnswerType.MONEY),
        ("How much does the Alpine 2 UL tent weigh?", AnswerType.WEIGHT),
        ("How long does standard shipping take?", AnswerType.DURATION),
        ("What's the deadline for swapping my boots?", AnswerType.DURATION),
        ("How often should I wash a waterproof shell?", AnswerType.FREQUENCY),
        ("What's the latest time I can order for next-day delivery?", AnswerType.CLOCK_TIME),
        ("When is the Portland store open on Sundays?", AnswerType.CLOCK_TIME),
        ("When did the Reno distribution center open?", AnswerType.WHEN),
        ("Where do I mail gear that needs a warranty inspection?", AnswerType.ADDRESS),
        ("What's the phone number of the Seattle store?", AnswerType.PHONE),
        ("What is the waterproof rating in millimeters?", AnswerType.LENGTH),
        ("How many people can share one membership?", AnswerType.COUNT),
    ],
)
def test_a_question_with_a_clear_expected_value_is_typed(question: str, kind: AnswerType) -> None:
    assert expected(question) is kind


@pytest.mark.parametrize(
    "question",
    [
        "Can I spread the cost of a big order over several payments?",  # yes/no
        "Is there a flat fee for freight delivery of a canoe?",
        "Who started the company?",
        "Which shipping method do fuel canisters have to use?",
        "What's the right way to dry a down jacket?",
        "",
    ],
)
def test_open_and_yes_no_questions_are_not_typed(question: str) -> None:
    assert expected(question) is None


@pytest.mark.parametrize(
    ("kind", "sentence", "held"),
    [
        (AnswerType.MONEY, "Express shipping costs $19.95.", True),
        (AnswerType.MONEY, "A size exchange is free.", True),
        (AnswerType.MONEY, "The Beacon 400 headlamp is covered for 2 years.", False),
        (AnswerType.DURATION, "Ground shipping takes 8-12 business days.", True),
        (AnswerType.DURATION, "Emails are answered within one business day.", True),
        (AnswerType.DURATION, "Kayaks are delivered curbside by a freight carrier.", False),
        (AnswerType.CLOCK_TIME, "Order by 11 a.m. Pacific Time.", True),
        (AnswerType.WEIGHT, "The tent weighs 1.8 kg.", True),
        (AnswerType.WEIGHT, "The Alpine 2 UL tent is covered for 2 years.", False),
        (AnswerType.ADDRESS, "Send it to the Warranty Center, 2150 SE Textron Drive, Bend, OR 97702.", True),
        (AnswerType.PHONE, "Call us at (541) 555-0134.", True),
        (AnswerType.LENGTH, "Size: M · Chest (inches): 38-40 in", True),
        (AnswerType.FREQUENCY, "Condition the leather every 6-8 outings.", True),
    ],
)
def test_a_sentence_holds_a_value_of_the_type_or_not(kind: AnswerType, sentence: str, held: bool) -> None:
    assert holds(kind, sentence) is held


def test_the_patterns_stay_linear_on_hostile_text() -> None:
    # Questions and passages are user and operator input: no pattern may
    # backtrack on a long run of near-matches.
    hostile = "how much " + "1 " * 20_000 + "x" + " a" * 20_000
    assert expected(hostile) is AnswerType.MONEY
    for kind in AnswerType:
        holds(kind, hostile)

"""What a follow-up message is about, without an LLM to rewrite it.

Three shapes, told apart by their words:
- a new question ("What payment methods do you accept?"): searched alone,
  never mixed with the question before it;
- a reference back ("how long does it take?"): searched alone and together
  with the previous question, whichever finds the closer passage;
- a new topic in the old question's frame ("and what about returns?", "and
  express?"): the passages must be about the new topic, and among those the
  previous question picks (how long, how much...).
"""

import re
from dataclasses import dataclass
from enum import StrEnum

_CONNECTOR = re.compile(
    r"^\s*(?:(?:and|but|so|also|ok|okay)\s*,?\s*)*(?:(?:what|how)\s+about|what\s+of|and)?\s*", re.IGNORECASE
)
_STARTS_WITH_CONNECTOR = re.compile(r"^\s*(?:and|also|what\s+about|how\s+about|what\s+of)\b", re.IGNORECASE)
_REFERENCE = re.compile(r"\b(?:it|its|that|this|they|them|those|these|one|there)\b", re.IGNORECASE)
_WORD = re.compile(r"\w+")
SHORT_WORDS = 8


class Shape(StrEnum):
    NEW_QUESTION = "new_question"
    REFERENCE = "reference"
    NEW_TOPIC = "new_topic"


@dataclass(frozen=True)
class FollowUp:
    shape: Shape
    topic: str
    """The message without its leading connector ("returns" of "and what about returns?")."""


def classify(message: str) -> FollowUp:
    topic = _CONNECTOR.sub("", message, count=1).strip(" ?!.") or message.strip()
    short = len(_WORD.findall(message)) <= SHORT_WORDS
    if short and _REFERENCE.search(topic):
        return FollowUp(Shape.REFERENCE, topic)
    if short and _STARTS_WITH_CONNECTOR.match(message):
        return FollowUp(Shape.NEW_TOPIC, topic)
    return FollowUp(Shape.NEW_QUESTION, message.strip())


_STEM = 5


def keeps_topic(question: str, topic: str) -> bool:
    """Whether `question` still names every word of `topic` (by the first
    letters, so "returns" is kept by "return process")."""
    words = {w[:_STEM] for w in _WORD.findall(question.lower())}
    topic_words = [w for w in _WORD.findall(topic.lower()) if len(w) >= 3]
    return all(any(word.startswith(w[:_STEM]) for word in words) for w in topic_words)

"""What kind of answer a question asks for, and whether a sentence has one.

"How much does the Beacon 400 headlamp cost?" wants an amount of money; a
passage that only says how long the headlamp is covered is about the right
thing and still no answer. Embedding similarity cannot tell those apart (both
score high), so the extractive answerer also checks the expected answer
type, as classic question-answering systems do: among the candidate
sentences it prefers one that holds such a value, and when the passages hold
none it says it does not know instead of quoting a near miss.

Only wh-questions with a clear expected type are typed ("how much ... cost",
"how long", "what time", "phone number"...). Yes/no questions, "who",
"which", "why" and open "what" questions are not: any sentence may answer
them. Patterns are English, bounded and linear (questions and passages are
user and operator input).
"""

import re
from dataclasses import dataclass
from enum import StrEnum

_NUMBER_WORD = (
    r"(?:\d+(?:[.,]\d+)?|a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|"
    r"thirty|forty|fifty|sixty|ninety|several|a few)"
)
_RANGE = rf"{_NUMBER_WORD}(?:\s?(?:-|–|to)\s?{_NUMBER_WORD})?"


class AnswerType(StrEnum):
    MONEY = "money"
    DURATION = "duration"
    FREQUENCY = "frequency"
    CLOCK_TIME = "clock time"
    WHEN = "when"
    ADDRESS = "address"
    PHONE = "phone"
    EMAIL = "email"
    PERCENT = "percent"
    WEIGHT = "weight"
    LENGTH = "length"
    COUNT = "count"


@dataclass(frozen=True)
class _Rule:
    type: AnswerType
    asked: re.Pattern[str]
    held: re.Pattern[str]


def _re(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


_TIME_UNIT = r"(?:business\s+|working\s+|calendar\s+)?(?:minutes?|hours?|days?|nights?|weeks?|months?|years?|seasons?)"
_CLOCK = r"\b\d{1,2}(?::\d{2})?\s?(?:a\.m\.|p\.m\.|am\b|pm\b)|\bnoon\b|\bmidnight\b"
_MONTHS = (
    r"january|february|march|april|may|june|july|august|september|october|november|december|"
    r"monday|tuesday|wednesday|thursday|friday|saturday|sunday|weekends?|weekdays?|spring|summer|autumn|fall|winter"
)

# Checked in order: the first whose question pattern matches types the question.
_RULES = (
    _Rule(
        AnswerType.PHONE,
        _re(r"\b(?:phone|telephone|fax)\s+number\b|\bnumber\s+(?:to|should\s+i)\s+call\b"),
        _re(r"\(?\b\d{3}\)?[-. ]\d{3}[-. ]\d{4}\b|\b1-8\d\d-"),
    ),
    _Rule(AnswerType.EMAIL, _re(r"\be-?mail\s+address\b"), _re(r"[\w.+-]+@[\w-]+\.\w+")),
    _Rule(
        AnswerType.WEIGHT,
        _re(r"\bweigh(?:s|t)?\b|\bhow\s+heavy\b"),
        _re(r"\b\d+(?:[.,]\d+)?\s?(?:g|kg|oz|lbs?|pounds?|grams?|kilograms?|ounces?)\b"),
    ),
    _Rule(
        AnswerType.LENGTH,
        _re(
            r"\bin\s+(?:millimet|centimet|met|inch|feet|foot)\w*\b|\bhow\s+(?:tall|wide|high|deep)\b|"
            r"^\s*what\s+(?:\w+\s+)?(?:size|measurement|inseam|length|width|height|dimensions?)\b"
        ),
        _re(
            r"\b\d+(?:[.,]\d+)?(?:\s?(?:-|–|to)\s?\d+(?:[.,]\d+)?)?\s?"
            r"(?:mm|cm|m|in|inches|ft|feet|millimet\w*|centimet\w*|met(?:er|re)s?)\b|\d\s?\"|"
            r"\bsize\s*:?\s*(?:x{0,3}s|s/m|m|m/l|l|x{1,3}l|\d+)\b"
        ),
    ),
    _Rule(
        AnswerType.PERCENT,
        _re(r"^\s*(?:what|how\s+much)\b.*\b(?:percent(?:age)?|discount|off)\b"),
        _re(r"\d+(?:[.,]\d+)?\s?%|\bpercent\b|\bhalf\b|\bnone\b|\bno\s+discount\b"),
    ),
    _Rule(
        AnswerType.MONEY,
        _re(
            r"\bhow\s+much\b(?!.*\b(?:weigh|heavy|time|longer|notice|warning)\b)|"
            r"^\s*what\b.*\b(?:cost|costs|price|prices|priced|fee|fees|charge|charges|pay|deposit|salary|revenue|"
            r"rate|rates)\b"
        ),
        _re(
            r"[$€£]\s?\d|\b\d+(?:[.,]\d+)?\s?(?:dollars|usd|eur|gbp|cad|euros?|pounds)\b|\bfree\b|"
            r"\bno\s+(?:charge|cost|fee|minimum)\b|\bnothing\b|\bat\s+cost\b"
        ),
    ),
    _Rule(
        AnswerType.FREQUENCY,
        _re(r"\bhow\s+often\b|\bhow\s+many\s+times\b"),
        _re(
            rf"\bevery\b|\beach\b|\bonce\b|\btwice\b|\b{_NUMBER_WORD}\s+times\b|\bper\s+(?:year|month|week|day)\b|"
            r"\b(?:daily|weekly|monthly|yearly|annually|whenever)\b"
        ),
    ),
    _Rule(
        AnswerType.CLOCK_TIME,
        _re(
            r"\bwhat\s+time\b|\blatest\s+time\b|\bwhat\s+hours\b|\bopening\s+hours\b|\bby\s+when\b|"
            r"^\s*when\s+(?:is|are)\b.*\bopen\b"
        ),
        _re(_CLOCK + r"|\b(?:24/7|around the clock|closed)\b"),
    ),
    _Rule(
        AnswerType.DURATION,
        _re(
            r"\bhow\s+long\b|\bhow\s+many\s+(?:business\s+|working\s+)?(?:minutes|hours|days|nights|weeks|months|years)\b|"
            r"\bhow\s+(?:soon|quickly|fast)\b|\bdeadline\b|\bhow\s+close\s+to\b"
        ),
        _re(
            rf"\b{_RANGE}\s+{_TIME_UNIT}\b|\b(?:lifetime|for\s+life|for\s+good|forever|indefinitely|no\s+time\s+limit)\b|"
            r"\b(?:same|next)[- ](?:business[- ])?day\b|\bovernight\b|\bimmediately\b|\buntil\b|" + _CLOCK
        ),
    ),
    _Rule(
        AnswerType.WHEN,
        _re(r"^\s*when\b|\bwhat\s+(?:date|day|year|month)\b"),
        _re(
            rf"\b(?:{_MONTHS})\b|\b(?:1[89]|20)\d\d\b|\b\d{{1,2}}/\d{{1,2}}\b|"
            rf"\b(?:when|after|before|once|until|as soon as|at the time|during|every|each)\b|{_CLOCK}|"
            rf"\b{_RANGE}\s+{_TIME_UNIT}\b"
        ),
    ),
    _Rule(
        AnswerType.ADDRESS,
        _re(r"^\s*where\b.*\b(?:mail|send|post|ship|bring|drop|return)\b"),
        _re(
            r"\b\d{1,6}\s+(?:[NSEW]{1,2}\s+)?(?:[A-Z0-9][\w.]*\s+){1,4}"
            r"(?:Street|St|Avenue|Ave|Drive|Dr|Road|Rd|Boulevard|Blvd|Way|Lane|Ln|Place|Pl|Court|Ct|Highway|Hwy)\b|"
            r"[\w.+-]+@[\w-]+\.\w+|\bhttps?://|\bonline\b|\b(?:any|our|a|the)\s+(?:\w+\s+)?(?:store|shop|center|centre)\b",
        ),
    ),
    _Rule(
        AnswerType.COUNT,
        _re(r"\bhow\s+many\b|\bhow\s+old\b"),
        _re(rf"\b{_NUMBER_WORD}\b|\b(?:both|all|single|unlimited|no\s+limit|any\s+number)\b"),
    ),
)


def expected(question: str) -> AnswerType | None:
    """The type of value the question asks for, or None when any sentence may answer it."""
    for rule in _RULES:
        if rule.asked.search(question):
            return rule.type
    return None


def holds(kind: AnswerType, sentence: str) -> bool:
    """Whether the sentence holds a value of that type."""
    return any(rule.type is kind and rule.held.search(sentence) for rule in _RULES)

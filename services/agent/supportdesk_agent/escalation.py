"""When a conversation should go to a human: weighted alarm words, or a
customer asking for one outright."""

import re
from dataclasses import dataclass

_HUMAN_REQUEST = re.compile(
    r"\b(human|real person|live agent|representative|"
    r"(speak|talk|chat) (to|with) (someone|somebody|a person|an agent|a manager|an operator))\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"[a-z']+")


@dataclass(frozen=True)
class Verdict:
    escalate: bool
    reason: str | None = None
    human_requested: bool = False


class EscalationPolicy:
    def __init__(self, keywords: dict[str, float], threshold: float, enabled: bool = True) -> None:
        self.keywords = {k.lower(): w for k, w in keywords.items()}
        self.threshold = threshold
        self.enabled = enabled

    def assess(self, text: str) -> Verdict:
        if not self.enabled:
            return Verdict(False)
        if _HUMAN_REQUEST.search(text):
            return Verdict(True, "customer asked for a human", human_requested=True)
        found = sorted({w for w in _WORD.findall(text.lower()) if w in self.keywords})
        weight = sum(self.keywords[w] for w in found)
        if weight >= self.threshold:
            return Verdict(True, f"keywords: {', '.join(found)}")
        return Verdict(False)

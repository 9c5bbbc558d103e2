import pytest

from supportdesk_agent.escalation import EscalationPolicy
from supportdesk_agent.settings import DEFAULT_ESCALATION_KEYWORDS


@pytest.fixture
def policy() -> EscalationPolicy:
    return EscalationPolicy(DEFAULT_ESCALATION_KEYWORDS, threshold=0.9)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("I will call my lawyer about this", "keywords: lawyer"),
        ("This is urgent and I am angry", "keywords: angry, urgent"),
        ("Can I speak to someone, please?", "customer asked for a human"),
        ("I want a real person", "customer asked for a human"),
    ],
)
def test_escalates(policy: EscalationPolicy, text: str, reason: str) -> None:
    verdict = policy.assess(text)
    assert verdict.escalate
    assert verdict.reason == reason


@pytest.mark.parametrize("text", ["How long does shipping take?", "It's urgent", "Is this legalese?"])
def test_ordinary_questions_stay_with_the_bot(policy: EscalationPolicy, text: str) -> None:
    assert not policy.assess(text).escalate


def test_disabled_policy_never_escalates() -> None:
    assert not EscalationPolicy(DEFAULT_ESCALATION_KEYWORDS, 0.9, enabled=False).assess("lawyer! human!").escalate

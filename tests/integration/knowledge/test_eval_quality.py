"""The knowledge eval (make eval) as a regression test: the default
configuration must keep the figures docs/quality.md reports."""

from typing import Any

from knowledge_eval import evaluate

from supportdesk_agent.settings import AgentSettings


def test_the_default_configuration_keeps_its_eval_figures(embedder: Any) -> None:
    agent = AgentSettings()
    (report,) = evaluate([agent.knowledge.retrieval_mode], agent, embedder)
    assert len(report.answered) >= 50
    assert len(report.out_of_scope) >= 15
    assert len(report.follow_ups) >= 5
    assert report.recall(5) >= 0.95
    assert report.recall(1) >= 0.85
    assert report.accuracy >= 0.62
    assert report.refusal >= 0.8
    assert report.calibrated() == agent.rag_similarity_threshold, "the threshold is the one the eval calibrates"

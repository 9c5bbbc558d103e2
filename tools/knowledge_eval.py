"""The knowledge eval: how well SupportDesk answers from an operator's documents.

    make eval                       # every configuration; writes docs/quality.md
    python tools/knowledge_eval.py --config hybrid

Builds the eval corpus (eval/build.py: every supported format), indexes it
as the ingest worker does (its parser, the knowledge base's chunking and
vectors) into a fresh embedded Qdrant folder per configuration, and asks
eval/questions.yaml through the agent's own answering code (TurnAnswerer
with the extractive generator: no LLM, so figures are repeatable). Reports,
per configuration:

- retrieval: recall@1, recall@5 and MRR of the expected document;
- answers: accuracy (the reply holds the expected fact and cites the
  expected document), in-scope questions refused, out-of-scope questions
  refused (the reply cites nothing and says it does not know);
- follow-ups: accuracy of the second turn of two-turn conversations;
- latency: retrieval and whole-answer p50/p99;
- the refusal threshold sweep the default was chosen from.
"""

import argparse
import asyncio
import importlib.util
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # no types-PyYAML in the dev tools
from prometheus_client import CollectorRegistry

from supportdesk_agent.answerer import TurnAnswerer
from supportdesk_agent.escalation import EscalationPolicy
from supportdesk_agent.generators import ExtractiveGenerator
from supportdesk_agent.metrics import AgentMetrics
from supportdesk_agent.settings import AgentSettings
from supportdesk_contracts.events import HistoryTurn, Reply, ReplyCompleted, TurnRequested
from supportdesk_ingest.indexing import title_of
from supportdesk_ingest.parsing import extract_text
from supportdesk_knowledge.base import KnowledgeBase, open_index
from supportdesk_knowledge.embedder import Embedder
from supportdesk_knowledge.settings import KnowledgeSettings

ROOT = Path(__file__).resolve().parent.parent


def build_corpus(target: Path) -> list[Path]:
    """eval/build.py's, loaded from its file: eval/ is not a package, and
    "build" is also the name of a PyPI package."""
    spec = importlib.util.spec_from_file_location("supportdesk_eval_build", ROOT / "eval" / "build.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {ROOT / 'eval' / 'build.py'}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    built: list[Path] = module.build_corpus(target)
    return built


QUESTIONS = ROOT / "eval" / "questions.yaml"
CONFIGS: dict[str, dict[str, Any]] = {
    "dense": {"retrieval_mode": "dense"},
    "hybrid-0.1": {"retrieval_mode": "hybrid", "retrieval_keyword_weight": 0.1},
    "hybrid-0.2": {"retrieval_mode": "hybrid", "retrieval_keyword_weight": 0.2},
}
THRESHOLDS = [round(0.20 + 0.025 * i, 3) for i in range(15)]
REFUSAL_FLOOR = 0.8
"""The threshold is calibrated as the one with the best accuracy among those
that refuse at least this share of out-of-scope questions."""


FINDINGS = [
    "## What the figures say",
    "",
    "- Before this eval's changes (commit 8903ae0: character chunks, text without headings, lists or table "
    "headers, threshold 0.35), the same harness measured dense retrieval at recall@1 0.90, recall@5 0.99, "
    "MRR 0.94, accuracy 0.66, out-of-scope refused 0.28, follow-ups 0.44.",
    "- Structure-aware chunks (headings carried, rows named by their columns, lists with their lead-in, sizes in "
    "model tokens) and answers that weigh the question's own words raised accuracy at the old threshold from 0.66 "
    "to 0.76; the calibrated threshold trades some of it (in-scope questions refused, with a human offered) for "
    "refusing 0.83 of out-of-scope questions instead of 0.28.",
    "- Hybrid retrieval (BM25 keyword vectors with word pairs, Qdrant's IDF modifier, relative score fusion) fixes "
    "the exact-name failure it is for (tests/integration/knowledge/test_hybrid_retrieval.py), but on this set, "
    "where dense recall@5 is already 1.00, it did not raise recall@1 or accuracy; rank fusion (RRF) did worse "
    "(recall@1 0.87, follow-ups 0.44). Dense stays the default; `RETRIEVAL_MODE=hybrid` switches.",
    "- Answers are chosen among units (sentences, list items with their lead-in, table rows; a sentence that "
    'starts "It ..." with the one before it) by four signals: the unit\'s similarity under its headings, its '
    "passage's similarity, the share of the question's words it holds, and whether it holds the kind of value "
    'asked for (answer_types.py: "how long" wants a duration, "how much ... cost" an amount). Over the '
    "earlier sentence choice (similarity and words only, commit 66461e3) this raised accuracy with no threshold from "
    "0.77 to 0.79 and at the calibrated threshold from 0.67 to 0.70 (tests/unit/agent/test_answerer.py shows the "
    "cases it fixes). Using the answer type to refuse (no unit of the passages holds the value asked for) refused "
    "1 more out-of-scope question of 18 in a simulation, and was left out. An extractive answer now lists as "
    "sources the documents it quotes, in order of use, not every passage's document; accuracy, which needs the "
    "expected document among them, did not change.",
    "- Plain-text documents: a line in capitals standing alone, or underlined (setext), is now a section heading, "
    "so the FAQ's chunks no longer mix sections: accuracy 0.70 -> 0.72, in-scope questions refused 0.13 -> 0.10.",
    "- Latencies are per question never seen (no embedding cache), indexed in the default embedded engine (Qdrant "
    "Edge): retrieval is now mostly the question's embedding, the search itself about a millisecond "
    "(docs/benchmarks.md, section 4); the answer adds the embedding of its candidate sentences.",
    "- Re-ranking with a cross-encoder was not tried: no cross-encoder's weights ship in a PyPI package here. "
    "Neither does a stronger small embedding model with its weights (a package named for bge-small-en-v1.5 holds "
    "none).",
    "- Goals not yet met: accuracy 0.9 and out-of-scope refusal 0.9 at once. The similarity of the best passage "
    "does not separate the two sets well enough with this model (see the sweep).",
]


def normalised(text: str) -> str:
    return " ".join(text.lower().replace("–", "-").replace("—", "-").split())


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    facts: tuple[str, ...] = ()
    source: str | None = None
    earlier: str | None = None
    """The conversation's first turn, for a follow-up."""


@dataclass
class Outcome:
    question: Question
    reply: Reply
    rank: int | None
    """1-based rank of the expected document in the retrieval, if found."""
    best_score: float
    retrieval_seconds: float
    answer_seconds: float
    unfiltered: Reply
    """The reply with no refusal threshold, for the sweep."""

    @property
    def refused(self) -> bool:
        return not self.reply.sources

    @property
    def correct(self) -> bool:
        return self.holds_fact(self.reply)

    def holds_fact(self, reply: Reply) -> bool:
        content = normalised(reply.content)
        cited = {s.document_id for s in reply.sources}
        return any(normalised(f) in content for f in self.question.facts) and self.question.source in cited


@dataclass
class Report:
    config: str
    answered: list[Outcome] = field(default_factory=list)
    out_of_scope: list[Outcome] = field(default_factory=list)
    follow_ups: list[Outcome] = field(default_factory=list)
    indexing_seconds: float = 0.0
    chunks: int = 0

    def recall(self, k: int) -> float:
        return _share(o.rank is not None and o.rank <= k for o in self.answered)

    @property
    def mrr(self) -> float:
        return statistics.fmean(1 / o.rank if o.rank else 0.0 for o in self.answered)

    @property
    def accuracy(self) -> float:
        return _share(o.correct for o in self.answered)

    @property
    def refused_in_scope(self) -> float:
        return _share(o.refused for o in self.answered)

    @property
    def refusal(self) -> float:
        return _share(o.refused for o in self.out_of_scope)

    @property
    def follow_up_accuracy(self) -> float:
        return _share(o.correct for o in self.follow_ups)

    def latency(self, what: str, q: float) -> float:
        values = sorted(float(getattr(o, what)) for o in [*self.answered, *self.out_of_scope])
        return values[min(len(values) - 1, int(q * len(values)))] * 1000

    def sweep(self) -> list[tuple[float, float, float]]:
        """(threshold, accuracy, out-of-scope refusal) had the refusal
        threshold been each of THRESHOLDS: from the replies given with no
        threshold, an answer counts only where its best passage clears the
        threshold, a refusal where none does."""
        rows = []
        for threshold in THRESHOLDS:
            accuracy = _share(o.holds_fact(o.unfiltered) and o.best_score >= threshold for o in self.answered)
            refusal = _share(o.best_score < threshold for o in self.out_of_scope)
            rows.append((threshold, accuracy, refusal))
        return rows

    def calibrated(self) -> float | None:
        fit = [(accuracy, -t, t) for t, accuracy, refusal in self.sweep() if refusal >= REFUSAL_FLOOR]
        return max(fit)[2] if fit else None


def _share(flags: Any) -> float:
    values = list(flags)
    return sum(1 for v in values if v) / len(values) if values else 0.0


def load_questions(path: Path = QUESTIONS) -> tuple[list[Question], list[Question], list[Question]]:
    data = yaml.safe_load(path.read_text())
    answered = [Question(q["id"], q["question"], tuple(q["facts"]), q["source"]) for q in data["questions"]]
    out_of_scope = [Question(q["id"], q["question"]) for q in data["out_of_scope"]]
    follow_ups = [
        Question(c["id"], c["turns"][1], tuple(c["facts"]), c["source"], earlier=c["turns"][0])
        for c in data["conversations"]
    ]
    return answered, out_of_scope, follow_ups


class Collected:
    """A publisher that keeps what the answerer publishes."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    async def publish(self, message: Any, *, key: bytes | None = None, no_confirm: bool = False) -> Any:
        self.events.append(message)
        return None


class Evaluation:
    def __init__(self, embedder: Embedder, corpus: list[Path], agent: AgentSettings) -> None:
        self.embedder = embedder
        self.corpus = corpus
        self.agent = agent

    async def run(self, config: str, folder: Path) -> Report:
        settings = KnowledgeSettings(qdrant_path=str(folder), qdrant_collection="eval", **CONFIGS[config])
        index = open_index(settings, self.embedder.dimension)
        await index.ensure_collection()
        kb = KnowledgeBase(settings, self.embedder, index)
        report = Report(config)
        try:
            began = time.perf_counter()
            for path in self.corpus:
                text = extract_text(path.name, path.read_bytes())
                report.chunks += await kb.add_document(path.name, title_of(path.name), text)
            report.indexing_seconds = time.perf_counter() - began
            answered, out_of_scope, follow_ups = load_questions()
            report.answered = [await self.ask(kb, q) for q in answered]
            report.out_of_scope = [await self.ask(kb, q) for q in out_of_scope]
            report.follow_ups = [await self.ask(kb, q) for q in follow_ups]
        finally:
            await kb.close()
        return report

    def answerer(self, kb: KnowledgeBase, completions: Collected, threshold: float | None) -> TurnAnswerer:
        retrieval = self.agent.retrieval
        return TurnAnswerer(
            retriever=kb,
            generator=ExtractiveGenerator(self.embedder),
            escalation=EscalationPolicy(self.agent.escalation_keywords, self.agent.escalation_keyword_threshold),
            retrieval=retrieval if threshold is None else replace(retrieval, min_score=threshold),
            escalate_on_no_answer=self.agent.escalation_on_no_answer,
            deltas=Collected(),
            completions=completions,
            metrics=AgentMetrics(CollectorRegistry()),
        )

    async def ask(self, kb: KnowledgeBase, question: Question) -> Outcome:
        history: list[HistoryTurn] = []
        if question.earlier is not None:
            first = await self.reply(kb, question.earlier, [])
            history = [
                HistoryTurn(role="user", content=question.earlier),
                HistoryTurn(role="assistant", content=first.content),
            ]
        began = time.perf_counter()
        hits = await kb.search(question.question, 5, 0.0)
        retrieval = time.perf_counter() - began
        documents = list(dict.fromkeys(h.document_id for h in hits))
        rank = documents.index(question.source) + 1 if question.source in documents else None
        began = time.perf_counter()
        reply = await self.reply(kb, question.question, history)
        answering = time.perf_counter() - began
        unfiltered = await self.reply(kb, question.question, history, threshold=0.0)
        best = max((h.score for h in hits), default=0.0)
        return Outcome(question, reply, rank, best, retrieval, answering, unfiltered)

    async def reply(
        self, kb: KnowledgeBase, content: str, history: list[HistoryTurn], threshold: float | None = None
    ) -> Reply:
        """The agent's reply; with `threshold`, under that refusal threshold
        instead of the configured one."""
        completions = Collected()
        turn = TurnRequested(session_id="eval", message_id=str(uuid.uuid4()), content=content, history=history)
        await self.answerer(kb, completions, threshold).answer(turn)
        return next(e.reply for e in completions.events if isinstance(e, ReplyCompleted))


def evaluate(configs: list[str], agent: AgentSettings | None = None, embedder: Embedder | None = None) -> list[Report]:
    # No cache: each configuration's latencies are those of questions never seen.
    embedder = embedder or Embedder(cache_size=0)
    with tempfile.TemporaryDirectory() as scratch:
        corpus = build_corpus(Path(scratch) / "corpus")
        evaluation = Evaluation(embedder, corpus, agent or AgentSettings())
        return [asyncio.run(evaluation.run(c, Path(scratch) / c)) for c in configs]


def markdown(reports: list[Report], agent: AgentSettings) -> str:
    first = reports[0]
    lines = [
        "# Knowledge quality: the eval's figures",
        "",
        "Generated by `make eval` (tools/knowledge_eval.py) on the eval set in `eval/`: "
        f"{len(first.answered)} factual questions, {len(first.out_of_scope)} out-of-scope questions and "
        f"{len(first.follow_ups)} two-turn conversations over {len({o.question.source for o in first.answered})} "
        "documents in every supported format. Answers come from the agent's own code with the extractive "
        f"generator (no LLM); refusal threshold {agent.rag_similarity_threshold}, "
        f"{agent.rag_search_k} passages per turn.",
        "",
        "| configuration | chunks | recall@1 | recall@5 | MRR | accuracy | in-scope refused | out-of-scope refused "
        "| follow-ups | retrieval p50/p99 (ms) | answer p50/p99 (ms) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        lines.append(
            f"| {r.config} | {r.chunks} | {r.recall(1):.2f} | {r.recall(5):.2f} | {r.mrr:.2f} | {r.accuracy:.2f} | "
            f"{r.refused_in_scope:.2f} | {r.refusal:.2f} | {r.follow_up_accuracy:.2f} | "
            f"{r.latency('retrieval_seconds', 0.5):.1f} / {r.latency('retrieval_seconds', 0.99):.1f} | "
            f"{r.latency('answer_seconds', 0.5):.1f} / {r.latency('answer_seconds', 0.99):.1f} |"
        )
    lines += ["", *FINDINGS]
    for r in reports:
        lines += ["", f"## Refusal threshold sweep ({r.config})", ""]
        lines += [
            f"Calibrated (best accuracy refusing at least {REFUSAL_FLOOR:.0%} of out-of-scope questions): "
            f"{r.calibrated()}.",
            "",
            "| threshold | accuracy | out-of-scope refused |",
        ]
        lines.append("|---|---|---|")
        lines += [f"| {t:.3f} | {a:.2f} | {o:.2f} |" for t, a, o in r.sweep()]
    for r in reports:
        misses = [o for o in r.answered + r.follow_ups if not o.correct]
        wrongly = [o for o in r.out_of_scope if not o.refused]
        lines += ["", f"## Misses ({r.config})", ""]
        lines += [
            f"- `{o.question.id}`: {o.question.question!r} -> rank {o.rank}, best {o.best_score:.2f}, "
            f"cited {[s.document_id for s in o.reply.sources]}: {o.reply.content[:160]!r}"
            for o in misses
        ]
        lines += [
            f"- out of scope `{o.question.id}`: {o.question.question!r} answered from "
            f"{[s.document_id for s in o.reply.sources]} (best {o.best_score:.2f})"
            for o in wrongly
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", action="append", choices=sorted(CONFIGS), help="default: every configuration")
    parser.add_argument("--write", type=Path, help="also write the report here (docs/quality.md)")
    args = parser.parse_args()
    agent = AgentSettings()
    reports = evaluate(args.config or list(CONFIGS), agent)
    text = markdown(reports, agent)
    print(text)
    if args.write:
        args.write.write_text(text)


if __name__ == "__main__":
    main()

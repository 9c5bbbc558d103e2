"""The Prometheus rules (deploy/observability/alerts.yml) and the Grafana
dashboards: every PromQL expression parses with promql_parser (a port of
Prometheus' own parser), names only metrics of CATALOGUE (what the services
export) with labels they carry, rates only counters, and every alert carries
what on-call needs. Prometheus loads the rules file and compose mounts it.

tests/e2e/test_metrics_catalogue.py checks the other half: that a running
system exports every metric these expressions name.
"""

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import promql_parser
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
OBSERVABILITY = ROOT / "deploy" / "observability"
RULES_FILE = OBSERVABILITY / "alerts.yml"
PROMETHEUS_FILE = OBSERVABILITY / "prometheus.yml"
DASHBOARDS = sorted((OBSERVABILITY / "grafana" / "dashboards").glob("*.json"))
COMPOSE_FILE = ROOT / "docker-compose.yml"

Kind = Literal["counter", "gauge", "histogram"]


@dataclass(frozen=True)
class Family:
    """A metric family as prometheus_client declares it: its samples are
    name_total (counter), name (gauge), name_bucket/_sum/_count (histogram)."""

    kind: Kind
    labels: frozenset[str] = frozenset()


def counter(*labels: str) -> Family:
    return Family("counter", frozenset(labels))


def gauge(*labels: str) -> Family:
    return Family("gauge", frozenset(labels))


def histogram(*labels: str) -> Family:
    return Family("histogram", frozenset(labels))


# What the services export, by family name (docs/observability.md explains each).
_FASTSTREAM = ("app_name", "broker", "handler")
_PUBLISHED = ("app_name", "broker", "destination")
CATALOGUE: dict[str, Family] = {
    # gateway
    "supportdesk_gateway_messages": counter("channel"),
    "supportdesk_gateway_turn_seconds": histogram("channel", "outcome"),
    "supportdesk_gateway_first_delta_seconds": histogram("channel"),
    "supportdesk_gateway_client_errors": counter("code"),
    "supportdesk_gateway_fingerprint_mismatches": counter("mode"),
    "supportdesk_gateway_websockets": gauge(),
    "supportdesk_gateway_rate_limited": counter("limit"),
    # agent
    "supportdesk_agent_answers": counter("outcome"),
    "supportdesk_agent_escalations": counter(),
    "supportdesk_agent_llm_over_budget": counter(),
    "supportdesk_agent_llm_calls": counter("outcome"),
    "supportdesk_agent_llm_seconds": histogram(),
    "supportdesk_agent_llm_first_token_seconds": histogram(),
    "supportdesk_agent_llm_tokens": counter("kind"),
    "supportdesk_agent_llm_breaker_open": gauge(),
    "supportdesk_agent_answer_seconds": histogram(),
    "supportdesk_agent_retrieval_seconds": histogram("stage"),
    "supportdesk_agent_retrieval_top_score": histogram(),
    # ingest
    "supportdesk_ingest_documents": counter("outcome"),
    "supportdesk_ingest_chunks": counter(),
    "supportdesk_ingest_bytes": counter(),
    "supportdesk_ingest_document_seconds": histogram(),
    # session
    "supportdesk_sessions_active": gauge(),
    # every service
    "supportdesk_consumer_lag_messages": gauge("topic", "group"),
    "supportdesk_dead_letters": counter("topic", "reason"),
    "supportdesk_ready": gauge(),
    # FastStream's Prometheus middleware (metrics_prefix "supportdesk")
    "supportdesk_received_messages": counter(*_FASTSTREAM),
    "supportdesk_received_messages_size_bytes": histogram(*_FASTSTREAM),
    "supportdesk_received_messages_in_process": gauge(*_FASTSTREAM),
    "supportdesk_received_processed_messages": counter(*_FASTSTREAM, "status"),
    "supportdesk_received_processed_messages_duration_seconds": histogram(*_FASTSTREAM),
    "supportdesk_received_processed_messages_exceptions": counter(*_FASTSTREAM, "exception_type"),
    "supportdesk_published_messages": counter(*_PUBLISHED, "status"),
    "supportdesk_published_messages_duration_seconds": histogram(*_PUBLISHED),
    "supportdesk_published_messages_exceptions": counter(*_PUBLISHED, "exception_type"),
    # prometheus_client's process and platform collectors
    "process_cpu_seconds": counter(),
    "process_resident_memory_bytes": gauge(),
    "process_virtual_memory_bytes": gauge(),
    "process_start_time_seconds": gauge(),
    "process_open_fds": gauge(),
    "process_max_fds": gauge(),
    "python_gc_objects_collected": counter("generation"),
    "python_gc_objects_uncollectable": counter("generation"),
    "python_gc_collections": counter("generation"),
    "python_info": gauge("implementation", "major", "minor", "patchlevel", "version"),
}
# Labels Prometheus adds to every scraped series.
TARGET_LABELS = frozenset({"job", "instance"})
# Series Prometheus makes itself: no service exports them.
PROMETHEUS_MADE: dict[str, Family] = {
    "up": gauge(*TARGET_LABELS),
    "ALERTS": gauge("alertname", "alertstate", "severity"),
}
SEVERITIES = {"critical", "warning"}
# Grafana's interval variables, replaced by what they could be before parsing.
GRAFANA_VARIABLES = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h"}
RATE_FUNCTIONS = {"rate", "irate", "increase", "resets"}
GAUGE_FUNCTIONS = {"deriv", "delta", "idelta", "predict_linear"}


def samples(name: str, family: Family) -> dict[str, str]:
    """The series names a family's samples have, each with its suffix."""
    suffixes = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}[family.kind]
    return {name + suffix: suffix for suffix in suffixes}


@dataclass(frozen=True)
class Series:
    """What an expression may select: a name, its kind and labels."""

    kind: Kind | Literal["rate-able"]
    labels: frozenset[str]


def known_series(records: dict[str, promql_parser.Expr]) -> dict[str, Series]:
    """Every series name an expression may select: the catalogue's samples,
    Prometheus' own series, and the recording rules' results."""
    known: dict[str, Series] = {}
    for name, family in {**CATALOGUE, **PROMETHEUS_MADE}.items():
        extra = TARGET_LABELS if name in CATALOGUE else frozenset()
        for sample, suffix in samples(name, family).items():
            kind: Kind | Literal["rate-able"] = "rate-able" if family.kind != "gauge" else "gauge"
            le = frozenset({"le"}) if suffix == "_bucket" else frozenset()
            known[sample] = Series(kind, family.labels | extra | le)
    for name, expr in records.items():
        labels = output_labels(expr, known)
        known[name] = Series("gauge", frozenset() if labels is None else labels)
    return known


# --- reading the expressions -----------------------------------------------------------


def substitute_grafana_variables(expr: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match["braced"] or match["plain"]
        assert name in GRAFANA_VARIABLES, f"unknown Grafana variable ${name} in {expr!r}"
        return GRAFANA_VARIABLES[name]

    return re.sub(r"\$(?:\{(?P<braced>\w+)\}|(?P<plain>\w+))", value, expr)


def load_rules() -> dict[str, Any]:
    with RULES_FILE.open() as f:
        data = yaml.safe_load(f)
    assert isinstance(data, dict)
    return data


def rules() -> Iterator[dict[str, Any]]:
    for group in load_rules()["groups"]:
        yield from group["rules"]


def dashboard_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from dashboard_panels(panel.get("panels", []))


def expressions() -> list[tuple[str, str]]:
    """(where, PromQL) of every rule and every dashboard query, Grafana's
    variables substituted."""
    found = [(rule.get("alert") or rule["record"], rule["expr"]) for rule in rules()]
    for path in DASHBOARDS:
        for panel in dashboard_panels(json.loads(path.read_text())["panels"]):
            for target in panel.get("targets", []):
                where = f"{path.stem}: {panel['title']} {target['refId']}"
                found.append((where, substitute_grafana_variables(target["expr"])))
    return found


def recording_rules() -> dict[str, promql_parser.Expr]:
    return {rule["record"]: promql_parser.parse(rule["expr"]) for rule in rules() if "record" in rule}


EXPRESSIONS = expressions()
WHERE = [where for where, _ in EXPRESSIONS]


# --- walking the AST -------------------------------------------------------------------


def selectors(expr: promql_parser.Expr) -> list[promql_parser.VectorSelector]:
    found: list[promql_parser.VectorSelector] = []

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)

    promql_parser.walk(expr, visit)
    return found


def selected_name(selector: promql_parser.VectorSelector) -> str:
    if selector.name is not None:
        return selector.name
    equal = promql_parser.MatchOp.Equal
    names = [m.value for m in selector.matchers.matchers if m.name == "__name__" and m.op == equal]
    assert len(names) == 1, f"{selector}: select one metric by its name"
    return names[0]


def metric_names(expr: promql_parser.Expr) -> set[str]:
    """The series names an expression selects (what Prometheus must have)."""
    return {selected_name(selector) for selector in selectors(expr)}


def is_scalar(expr: promql_parser.Expr) -> bool:
    if isinstance(expr, promql_parser.NumberLiteral):
        return True
    if isinstance(expr, promql_parser.ParenExpr | promql_parser.UnaryExpr):
        return is_scalar(expr.expr)
    if isinstance(expr, promql_parser.BinaryExpr):
        return is_scalar(expr.lhs) and is_scalar(expr.rhs)
    if isinstance(expr, promql_parser.Call):
        return expr.func.name in ("scalar", "time")
    return False


def output_labels(expr: promql_parser.Expr, known: dict[str, Series]) -> frozenset[str] | None:
    """The labels an expression's result series carry (None: not known here)."""
    if isinstance(expr, promql_parser.VectorSelector):
        series = known.get(selected_name(expr))
        return None if series is None else series.labels
    if isinstance(expr, promql_parser.MatrixSelector):
        return output_labels(expr.vector_selector, known)
    if isinstance(expr, promql_parser.ParenExpr | promql_parser.UnaryExpr | promql_parser.SubqueryExpr):
        return output_labels(expr.expr, known)
    if isinstance(expr, promql_parser.NumberLiteral | promql_parser.StringLiteral):
        return frozenset()
    if isinstance(expr, promql_parser.AggregateExpr):
        inner = output_labels(expr.expr, known)
        modifier = expr.modifier
        if str(expr.op) in ("topk", "bottomk", "limitk"):
            return inner
        if modifier is None:
            return frozenset()
        if modifier.type == promql_parser.AggModifierType.By:
            return frozenset(modifier.labels)
        return None if inner is None else inner - set(modifier.labels)
    if isinstance(expr, promql_parser.Call):
        if expr.func.name in ("vector", "time", "scalar"):
            return frozenset()
        if expr.func.name == "absent" and isinstance(expr.args[0], promql_parser.VectorSelector):
            equal = promql_parser.MatchOp.Equal
            return frozenset(m.name for m in expr.args[0].matchers.matchers if m.op == equal and m.name != "__name__")
        vectors = [arg for arg in expr.args if not is_scalar(arg) and not isinstance(arg, promql_parser.StringLiteral)]
        if not vectors:
            return frozenset()
        inner = output_labels(vectors[0], known)
        if inner is not None and expr.func.name == "histogram_quantile":
            return inner - {"le"}
        if expr.func.name in ("label_replace", "label_join"):
            return None
        return inner
    if isinstance(expr, promql_parser.BinaryExpr):
        if is_scalar(expr.lhs):
            return output_labels(expr.rhs, known)
        lhs, rhs = output_labels(expr.lhs, known), output_labels(expr.rhs, known)
        if is_scalar(expr.rhs):
            return lhs
        if str(expr.op) == "or":
            return None if lhs is None or rhs is None else lhs & rhs
        matching = expr.modifier
        if matching is not None and matching.matching is not None and str(expr.op) not in ("and", "unless"):
            labels = frozenset(matching.matching.labels)
            if matching.card == promql_parser.VectorMatchCardinality.ManyToOne:
                group = frozenset(matching.group_labels or [])
                return None if lhs is None else lhs | group  # group_left (...): and those copied from the right
            if matching.card == promql_parser.VectorMatchCardinality.OneToMany:
                group = frozenset(matching.group_labels or [])
                return None if rhs is None else rhs | group
            if matching.matching.type == promql_parser.LabelModifierType.Include:
                return labels  # on (...)
            return None if lhs is None else lhs - labels  # ignoring (...)
        return lhs
    return None


def calls(expr: promql_parser.Expr) -> list[promql_parser.Call]:
    found: list[promql_parser.Call] = []

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.Call):
            found.append(node)

    promql_parser.walk(expr, visit)
    return found


def problems(expr: str, known: dict[str, Series]) -> list[str]:
    """What is wrong with an expression that parses: unknown metrics, labels a
    metric does not carry, rates of gauges, histogram quantiles without le."""
    tree = promql_parser.parse(expr)
    found = []
    for selector in selectors(tree):
        name = selected_name(selector)
        if name not in known:
            found.append(f"unknown metric {name}")
            continue
        for matcher in selector.matchers.matchers:
            if matcher.name != "__name__" and matcher.name not in known[name].labels:
                found.append(f"{name} has no label {matcher.name}")
    for call in calls(tree):
        if call.func.name in RATE_FUNCTIONS | GAUGE_FUNCTIONS:
            matrices = [arg for arg in call.args if isinstance(arg, promql_parser.MatrixSelector)]
            name = selected_name(matrices[0].vector_selector) if matrices else ""
            kind = known[name].kind if name in known else None
            if call.func.name in RATE_FUNCTIONS and kind == "gauge":
                found.append(f"{call.func.name}() of the gauge {name}")
            if call.func.name in GAUGE_FUNCTIONS and kind == "rate-able":
                found.append(f"{call.func.name}() of the counter {name}: use rate()")
        if call.func.name == "histogram_quantile":
            buckets = [s for s in selectors(call.args[1]) if selected_name(s).endswith("_bucket")]
            if not buckets:
                found.append("histogram_quantile() of no _bucket series")
            labels = output_labels(call.args[1], known)
            if labels is not None and "le" not in labels:
                found.append("histogram_quantile() of series without le (sum by (le, ...))")

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            available = output_labels(node.expr, known)
            unknown = [] if available is None else [a for a in node.modifier.labels if a not in available]
            found.extend(f"{node.op} by {label}: no such label" for label in unknown)

    promql_parser.walk(tree, visit)
    return found


KNOWN = known_series(recording_rules())


# --- every expression --------------------------------------------------------------------


def test_there_is_something_to_check() -> None:
    assert DASHBOARDS
    assert sum(1 for rule in rules() if "alert" in rule) >= 8
    assert len([w for w in WHERE if ": " in w]) >= 30  # dashboard queries


@pytest.mark.parametrize(("where", "expr"), EXPRESSIONS, ids=WHERE)
def test_expression_parses(where: str, expr: str) -> None:
    promql_parser.parse(expr)


@pytest.mark.parametrize(("where", "expr"), EXPRESSIONS, ids=WHERE)
def test_expression_names_catalogued_metrics_and_labels(where: str, expr: str) -> None:
    assert problems(expr, KNOWN) == []


@pytest.mark.parametrize(
    "broken",
    [
        "sum(rate(supportdesk_gateway_messages_total[5m])",  # unclosed parenthesis
        "rate(supportdesk_gateway_messages_total)",  # rate of an instant vector
        "histogram_quantile(0.95)",  # missing argument
        "rate(supportdesk_gateway_messages_total[$__rate_interval])",  # variable left in
        "supportdesk_ready == == 0",
    ],
)
def test_the_parser_refuses_broken_expressions(broken: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the parser's only exception; its message varies
        promql_parser.parse(broken)


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("sum(rate(supportdesk_gateway_mesages_total[5m]))", "unknown metric supportdesk_gateway_mesages_total"),
        ("supportdesk_gateway_turn_seconds > 1", "unknown metric supportdesk_gateway_turn_seconds"),
        ("supportdesk_agent_answers > 1", "unknown metric supportdesk_agent_answers"),
        ('supportdesk_gateway_messages_total{chanel="ws"}', "supportdesk_gateway_messages_total has no label chanel"),
        ("rate(supportdesk_gateway_websockets[5m])", "rate() of the gauge supportdesk_gateway_websockets"),
        ("deriv(supportdesk_dead_letters_total[10m])", "deriv() of the counter supportdesk_dead_letters_total"),
        (
            "histogram_quantile(0.9, sum by (channel) (rate(supportdesk_gateway_turn_seconds_bucket[5m])))",
            "histogram_quantile() of series without le",
        ),
        ("sum by (topic) (rate(supportdesk_gateway_messages_total[5m]))", "sum by topic: no such label"),
    ],
)
def test_the_checks_catch_mistakes(expr: str, problem: str) -> None:
    found = problems(expr, KNOWN)
    assert any(p.startswith(problem) for p in found), found


def test_grafana_variables_are_substituted() -> None:
    assert substitute_grafana_variables("rate(x[$__rate_interval]) + rate(y[${__interval}])") == (
        "rate(x[5m]) + rate(y[1m])"
    )
    with pytest.raises(AssertionError, match="unknown Grafana variable"):
        substitute_grafana_variables('x{job="$job"}')


# --- the rules file -------------------------------------------------------------------------


def duration(text: str) -> timedelta:
    return promql_parser.parse_duration(text)


ALERT_KEYS = {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
RECORD_KEYS = {"record", "expr", "labels"}


def test_rule_groups_are_well_formed() -> None:
    groups = load_rules()["groups"]
    names = [group["name"] for group in groups]
    assert len(names) == len(set(names)), names
    seen: set[str] = set()
    for group in groups:
        assert set(group) <= {"name", "interval", "rules"}, group["name"]
        for rule in group["rules"]:
            kind = "alert" if "alert" in rule else "record"
            assert ("alert" in rule) != ("record" in rule), rule
            allowed = ALERT_KEYS if kind == "alert" else RECORD_KEYS
            assert set(rule) <= allowed, f"{rule[kind]}: unknown keys {set(rule) - allowed}"
            assert rule[kind] not in seen, f"{rule[kind]} defined twice"
            seen.add(rule[kind])
            if kind == "record":
                # level:metric:operations, the recording rules' naming convention
                assert re.fullmatch(r"[a-z_]+:[a-z_]+:[a-z0-9_]+", rule["record"]), rule["record"]
            else:
                assert re.fullmatch(r"SupportDesk[A-Z][A-Za-z]+", rule["alert"]), rule["alert"]
                if "for" in rule:
                    assert duration(rule["for"]) > timedelta(0), rule["alert"]


def test_recording_rules_come_before_their_use() -> None:
    for group in load_rules()["groups"]:
        recorded: set[str] = set()
        for rule in group["rules"]:
            used = {name for name in metric_names(promql_parser.parse(rule["expr"])) if ":" in name}
            assert used <= recorded, f"{rule.get('alert') or rule['record']} uses {used - recorded} before its rule"
            if "record" in rule:
                recorded.add(rule["record"])


def test_every_alert_tells_on_call_what_to_do() -> None:
    for rule in rules():
        if "alert" not in rule:
            continue
        name = rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, name
        annotations = rule["annotations"]
        assert set(annotations) >= {"summary", "description", "runbook"}, name
        for key in ("summary", "description", "runbook"):
            assert annotations[key].strip(), f"{name}: empty {key}"
        assert "\n" not in annotations["runbook"].strip(), f"{name}: the runbook is one line"
        assert "\n" not in annotations["summary"].strip(), f"{name}: the summary is one line"


def test_annotations_name_labels_the_alert_has() -> None:
    for rule in rules():
        if "alert" not in rule:
            continue
        labels = output_labels(promql_parser.parse(rule["expr"]), KNOWN)
        assert labels is not None, f"{rule['alert']}: its labels are not known"
        for text in rule["annotations"].values():
            for label in re.findall(r"\$labels\.(\w+)", text):
                assert label in labels, f"{rule['alert']}: $labels.{label}, but its series carry only {sorted(labels)}"


def test_the_slo_alerts_burn_at_the_workbook_rates() -> None:
    """Multiwindow, multi-burn-rate: 14.4x over 1h and 5m, 6x over 6h and 30m,
    of a 1% error budget; the ratios over turn_seconds' 2.5 s bucket."""
    alerts = {rule["alert"]: rule for rule in rules() if "alert" in rule}
    fast = alerts["SupportDeskTurnLatencyBudgetFastBurn"]["expr"]
    slow = alerts["SupportDeskTurnLatencyBudgetSlowBurn"]["expr"]
    assert {"supportdesk:turns_slow:ratio_rate1h", "supportdesk:turns_slow:ratio_rate5m"} <= metric_names(
        promql_parser.parse(fast)
    )
    assert "(14.4 * 0.01)" in fast
    assert {"supportdesk:turns_slow:ratio_rate6h", "supportdesk:turns_slow:ratio_rate30m"} <= metric_names(
        promql_parser.parse(slow)
    )
    assert "(6 * 0.01)" in slow
    records = {rule["record"]: rule["expr"] for rule in rules() if "record" in rule}
    for window in ("5m", "30m", "1h", "6h"):
        expr = records[f"supportdesk:turns_slow:ratio_rate{window}"]
        windows = {m.range for m in walk_matrices(promql_parser.parse(expr))}
        assert windows == {duration(window)}, f"ratio_rate{window} uses {windows}"
        assert 'le="2.5"' in expr


def walk_matrices(expr: promql_parser.Expr) -> list[promql_parser.MatrixSelector]:
    found: list[promql_parser.MatrixSelector] = []

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.MatrixSelector):
            found.append(node)

    promql_parser.walk(expr, visit)
    return found


# --- Prometheus and compose ---------------------------------------------------------------


def test_prometheus_loads_the_rules_and_compose_mounts_them() -> None:
    with PROMETHEUS_FILE.open() as f:
        config = yaml.safe_load(f)
    with COMPOSE_FILE.open() as f:
        prometheus = yaml.safe_load(f)["services"]["prometheus"]
    mounts = {}
    for volume in prometheus["volumes"]:
        source, target, *_ = volume.split(":")
        mounts[target] = source
    assert config["rule_files"], "prometheus.yml loads no rules"
    assert mounts.get("/etc/prometheus/prometheus.yml") == "./deploy/observability/prometheus.yml"
    for path in config["rule_files"]:
        assert path in mounts, f"{path} is not mounted into the prometheus container"
        assert (ROOT / mounts[path]).resolve() == RULES_FILE.resolve()
    assert config["global"]["evaluation_interval"]


# --- the dashboards -------------------------------------------------------------------------


@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.name for p in DASHBOARDS])
def test_dashboard_panels_are_laid_out(path: Path) -> None:
    panels = list(dashboard_panels(json.loads(path.read_text())["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]
        if panel["type"] != "row":
            assert panel.get("description"), f"{panel['title']}: say what it shows"
            refs = [target["refId"] for target in panel["targets"]]
            assert len(refs) == len(set(refs)), panel["title"]


# --- the documentation ----------------------------------------------------------------------


def test_docs_describe_every_metric_and_alert() -> None:
    text = (ROOT / "docs" / "observability.md").read_text()
    undocumented = [
        name for name in CATALOGUE if f"`{name}`" not in text and not name.startswith(("process_", "python_"))
    ]
    assert not undocumented, f"docs/observability.md does not describe {undocumented}"
    alerts = [rule["alert"] for rule in rules() if "alert" in rule]
    assert not [a for a in alerts if f"`{a}`" not in text], "docs/observability.md misses alerts"

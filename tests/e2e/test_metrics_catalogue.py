"""Every metric the Grafana dashboards and the Prometheus rules of
deploy/observability read is exported by the running system: after a
WebSocket turn, a REST turn and a document upload, each name has its family's
`# TYPE` line on the /metrics of a gateway or a worker. (tests/unit/deploy/
test_alert_rules.py checks the same expressions against the catalogue.)"""

import asyncio
import json
import re
from collections.abc import Iterator

import httpx
import promql_parser
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families
from test_stack import QUESTION, auth, base, frames_until, new_session, ws_url

from devstack import Stack
from stacks import ADMIN_KEY, StackFactory
from unit.deploy.test_alert_rules import CATALOGUE, EXPRESSIONS, PROMETHEUS_MADE, metric_names, recording_rules, samples

pytestmark = pytest.mark.e2e

_TYPE_LINE = re.compile(r"^# TYPE (?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*) (?P<kind>\w+)$", re.MULTILINE)
_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
    "gauge": ("",),
    "untyped": ("",),
    "unknown": ("",),
}


def exported_names(text: str) -> set[str]:
    """The series names a /metrics page declares with its `# TYPE` lines
    (a family with no samples yet counts: its series will come)."""
    names: set[str] = set()
    for match in _TYPE_LINE.finditer(text):
        name, kind = match["name"], match["kind"]
        if kind == "counter":
            # prometheus_client declares a counter as name_total in the text
            # format, and as name in OpenMetrics.
            name = name.removesuffix("_total")
        names.update(name + suffix for suffix in _SUFFIXES.get(kind, ("",)))
    return names


def referenced_names() -> dict[str, list[str]]:
    """Each series name the dashboards and rules select, with where; not the
    recording rules' results nor the series Prometheus makes itself."""
    skip = set(recording_rules()) | set(PROMETHEUS_MADE)
    referenced: dict[str, list[str]] = {}
    for where, expr in EXPRESSIONS:
        for name in metric_names(promql_parser.parse(expr)) - skip:
            referenced.setdefault(name, []).append(where)
    return referenced


def label_sets(text: str) -> dict[str, set[frozenset[str]]]:
    """The label names each series name carries on a /metrics page (le aside)."""
    found: dict[str, set[frozenset[str]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, set()).add(frozenset(sample.labels) - {"le"})
    return found


async def scrape(url: str) -> str:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(url)
    assert response.status_code == 200, f"{url}: {response.status_code}"
    return response.text


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory, make_stack: StackFactory) -> Iterator[Stack]:
    """A system of its own: the upload below retires the sample knowledge,
    which the shared system's other tests answer from."""
    stack = make_stack(redis_url, tmp_path_factory.mktemp("catalogue"), replicas=2)
    stack.start()
    yield stack
    stack.stop()


async def test_every_metric_the_dashboards_and_alerts_read_is_exported(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=base(stack), timeout=30) as http:
        # A WebSocket turn, a REST turn and a document: every path that counts something.
        session = await new_session(http)
        async with websockets.connect(ws_url(stack, session["session_id"], session["token"])) as ws:
            await ws.send(json.dumps({"type": "message", "content": QUESTION}))
            frames = await frames_until(ws, "reply")
        assert frames[-1]["content"], frames
        turn = await http.post(
            f"/api/v1/sessions/{session['session_id']}/messages", json={"content": QUESTION}, headers=auth(session)
        )
        assert turn.status_code == 200, turn.text

        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        files = {"file": ("metrics-catalogue.txt", b"Loyalty points: points expire after 24 months.", "text/plain")}
        upload = await http.post("/api/v1/documents", files=files, headers=admin)
        assert upload.status_code == 202, upload.text
        document_id = upload.json()["document_id"]
        async with asyncio.timeout(60):
            while (record := (await http.get(f"/api/v1/documents/{document_id}", headers=admin)).json())[
                "status"
            ] != "indexed":
                assert record["status"] != "failed", record
                await asyncio.sleep(0.2)

    pages = {f"gateway-{i}": await scrape(f"{base(stack, i)}/metrics") for i in range(stack.gateway_replicas)}
    colocated = any(process.name == "agent+ingest" for process in stack.processes)
    for name, port in stack.ops_ports.items():
        if name == "ingest" and colocated:
            continue  # Qdrant's local mode: the ingest worker runs in the agent's process
        pages[name] = await scrape(f"http://127.0.0.1:{port}/metrics")

    exported = {name: exported_names(text) for name, text in pages.items()}
    everywhere = set().union(*exported.values())
    missing = {name: places for name, places in referenced_names().items() if name not in everywhere}
    assert not missing, "not exported by any service:\n" + "\n".join(
        f"  {name}  (read by {', '.join(sorted(set(places))[:3])})" for name, places in sorted(missing.items())
    )
    # The labels the dashboards and rules group and filter by are the ones the series carry.
    wrong = []
    for page, text in pages.items():
        carried = label_sets(text)
        for family_name, family in CATALOGUE.items():
            for sample in samples(family_name, family):
                wrong += [
                    f"{page}: {sample} has labels {sorted(labels)}, the catalogue says {sorted(family.labels)}"
                    for labels in carried.get(sample, set())
                    if labels != family.labels
                ]
    assert not wrong, "\n".join(wrong)
    # The per-service panels and alerts (CPU, memory, readiness) need these from every process.
    for page, names in exported.items():
        absent = {"supportdesk_ready", "process_cpu_seconds_total", "process_resident_memory_bytes"} - names
        assert not absent, f"{page} does not export {sorted(absent)}"

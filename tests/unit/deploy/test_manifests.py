"""deploy/k8s as rendered by `kubectl kustomize`: every object valid against
the Kubernetes API schemas (custom resources against their vendored CRD
schemas, crds/; the Prometheus Operator's against a focused schema below),
and the deployment contract (docs: deploy/README.md) kept: probes, ports, bind
addresses, security, resources, shutdown timing, secrets only from the Secret,
availability, network policies, ingress, topics, tracing settings, and the
monitoring component's scraping and rules (the rules exactly those of
deploy/observability/alerts.yml).

Needs kubectl on PATH (no cluster), kubernetes-validate, and sh with sed for
the monitoring component's sync-rules.sh; no network."""

import base64
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, get_args
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml

from manifests import K8S, Object, RenderError, container_env, find, render

KUBERNETES_VERSION = "1.31.0"  # the oldest version the manifests support (deploy/README.md)
CRDS = Path(__file__).parent / "crds"
OBSERVABILITY = K8S.parent / "observability"
ALERT_RULES = OBSERVABILITY / "alerts.yml"  # the compose profile's Prometheus rules
COMPOSE_PROMETHEUS = OBSERVABILITY / "prometheus.yml"
SYNC_RULES = "sh deploy/k8s/components/monitoring/sync-rules.sh"

SERVICES = ("gateway", "session", "agent", "ingest")
WORKERS = ("session", "agent", "ingest")
KAFKA_SECRETS = {"KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD", "KAFKA_SSL_KEY_PASSWORD"}
# Which keys of Secret supportdesk-secrets each service takes: (required, optional).
SECRETS: dict[str, tuple[set[str], set[str]]] = {
    "gateway": (
        {"ADMIN_API_KEY", "SESSION_ENCRYPTION_KEYS", "REDIS_URL"},
        {"IDENTITY_SECRET", "OPERATOR_KEYS"} | KAFKA_SECRETS,
    ),
    "session": ({"SESSION_ENCRYPTION_KEYS", "REDIS_URL"}, {"ESCALATION_WEBHOOK_SECRET"} | KAFKA_SECRETS),
    "agent": (
        {"QDRANT_URL", "REDIS_URL", "SESSION_ENCRYPTION_KEYS"},
        {"QDRANT_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_KEY"} | KAFKA_SECRETS,
    ),
    "ingest": ({"REDIS_URL", "QDRANT_URL", "SESSION_ENCRYPTION_KEYS"}, {"QDRANT_API_KEY"} | KAFKA_SECRETS),
    "topics": (set(), KAFKA_SECRETS),
}
SECRET_KEYS = set().union(*(required | optional for required, optional in SECRETS.values()))
# Named container ports and the setting each must equal; the port the probes use.
PORTS = {
    "gateway": {"http": "GATEWAY_PORT", "ops": "GATEWAY_OPS_PORT"},
    "session": {"ops": "SESSION_OPS_PORT"},
    "agent": {"ops": "AGENT_OPS_PORT"},
    "ingest": {"ops": "INGEST_OPS_PORT"},
}
PROBE_PORT = {"gateway": "http", "session": "ops", "agent": "ops", "ingest": "ops"}
# Egress each service needs besides DNS (Kafka 9092/9093, Redis, Qdrant HTTP/gRPC,
# LLM HTTPS, traces to an OTLP collector over gRPC/HTTP; the topics Job sends none).
KAFKA = {9092, 9093}
OTLP = {4317, 4318}
EGRESS = {
    "gateway": KAFKA | {6379} | OTLP,
    "session": KAFKA | {6379, 443} | OTLP,
    "agent": KAFKA | {6379, 6333, 6334, 443} | OTLP,
    "ingest": KAFKA | {6379, 6333, 6334} | OTLP,
    "topics": KAFKA,
}
# OTEL_RESOURCE_ATTRIBUTES of every service: attribute -> the downward-API field it takes.
RESOURCE_FIELDS = {
    "k8s.pod.name": "metadata.name",
    "k8s.namespace.name": "metadata.namespace",
    "k8s.node.name": "spec.nodeName",
}
# Peak RSS (MiB) of each process in tests/e2e/test_kubernetes.py on the dev
# machine (idle, busy); the gateway's busy figure is 10,000 open WebSockets at
# ~75 KiB each, and ingest's adds the parse of a large document. Requests
# cover idle, limits keep >= 20 % above busy. Keep in step with the table in
# deploy/README.md.
MEASURED_RSS_MIB = {
    "gateway": (76, 76 + 10_000 * 75 / 1024),
    "session": (76, 76),
    "agent": (581, 581),
    "ingest": (605, 605 + 300),
}
MODEL_LOADERS = ("agent", "ingest")
PUBLIC_PATHS = {"/", "/api", "/ws", "/docs", "/openapi.json"}
TOPICS = (
    "chat.inbound",
    "chat.outbound",
    "agent.turns",
    "sessions.escalations",
    "documents.uploads",
    "documents.status",
    "deadletter",
)
DAY_MS = 24 * 3600 * 1000
PRESTOP_SECONDS = 5
SHUTDOWN_MARGIN_SECONDS = 10

# Each component rendered on top of the base, with what it needs listed before it.
COMPONENT_STACKS = {
    "availability": ["availability"],
    "keda-autoscaling": ["availability", "keda-autoscaling"],
    "keda-kafka-tls-sasl": ["keda-autoscaling", "kafka-tls-sasl", "keda-kafka-tls-sasl"],
    "kafka-topics-strimzi": ["kafka-topics-strimzi"],
    "kafka-topics-job": ["kafka-topics-job"],
    "external-secrets": ["external-secrets"],
    "kafka-tls-sasl": ["kafka-topics-job", "kafka-tls-sasl"],
    "monitoring": ["monitoring"],
}
OVERLAYS = ("dev", "production")
# Optional components added to an overlay, as its kustomization.yaml would list them.
OVERLAY_STACKS = {"production+monitoring": ("production", ["monitoring"])}


# --- rendering ----------------------------------------------------------------


def _render(path: Path) -> list[Object]:
    try:
        return render(path)
    except RenderError as exc:
        error = str(exc)
    pytest.fail(error, pytrace=False)  # never a skip: a missing kubectl is a broken test setup


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], list[Object]]:
    """Objects of a target: "base", "overlays/<name>", "components/<name>"
    (that component's stack on the base) or "overlays/<overlay>+<component>..."
    (OVERLAY_STACKS), the last two in a throwaway kustomization."""
    cache: dict[str, list[Object]] = {}

    def stacked(target: str, resource: str, components: list[str]) -> list[Object]:
        directory = tmp_path_factory.mktemp(target.replace("/", "-").replace("+", "-"))
        relative = Path(os.path.relpath(K8S, directory))
        kustomization = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "namespace": "supportdesk",
            "resources": [str(relative / resource)],
            "components": [str(relative / "components" / c) for c in components],
        }
        (directory / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
        return _render(directory)

    def get(target: str) -> list[Object]:
        if target not in cache:
            kind, _, name = target.partition("/")
            if kind == "components":
                cache[target] = stacked(target, "base", COMPONENT_STACKS[name])
            elif name in OVERLAY_STACKS:
                overlay, components = OVERLAY_STACKS[name]
                cache[target] = stacked(target, f"overlays/{overlay}", components)
            else:
                cache[target] = _render(K8S / target)
        return cache[target]

    return get


TARGETS = [
    "base",
    *(f"overlays/{o}" for o in OVERLAYS),
    *(f"components/{c}" for c in COMPONENT_STACKS),
    *(f"overlays/{s}" for s in OVERLAY_STACKS),
]
DEPLOYABLE = ["base", *(f"overlays/{o}" for o in OVERLAYS)]
MONITORED = ["components/monitoring", *(f"overlays/{s}" for s in OVERLAY_STACKS)]


def services(objects: list[Object]) -> Iterator[tuple[str, Object]]:
    for name in SERVICES:
        yield name, find(objects, "Deployment", f"supportdesk-{name}")


def workloads(objects: list[Object]) -> Iterator[tuple[str, Object]]:
    """The SupportDesk pods' owners: the four Deployments and the topics Job if present."""
    yield from services(objects)
    for job in (o for o in objects if o["kind"] == "Job"):
        yield job["metadata"]["labels"]["app.kubernetes.io/component"], job


def config(objects: list[Object]) -> dict[str, str]:
    (configmap,) = [
        o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("supportdesk-config")
    ]
    return {k: str(v) for k, v in configmap["data"].items()}


def pod(workload: Object) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def container(workload: Object) -> dict[str, Any]:
    (only,) = pod(workload)["containers"]
    result: dict[str, Any] = only
    return result


def of_kind(objects: list[Object], kind: str) -> list[Object]:
    return [o for o in objects if o["kind"] == kind]


def quantity(value: str | int) -> float:
    """CPU in cores or memory in MiB."""
    text = str(value)
    units = {"m": 1e-3, "Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In", expression  # the only operator used here
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def pod_labels(workload: Object) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def port_number(port: str | int, workload: Object) -> int:
    if isinstance(port, int):
        return port
    for c in pod(workload)["containers"]:
        for p in c.get("ports", []):
            if p["name"] == port:
                return int(p["containerPort"])
    raise AssertionError(f"{workload['metadata']['name']} has no port named {port}")


# --- schema validation -----------------------------------------------------------


def _crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    schemas = {}
    for path in sorted(CRDS.glob("*.json")):
        document = json.loads(path.read_text())
        schemas[(document["apiVersion"], document["kind"])] = document["schema"]
    return schemas


CRD_SCHEMAS = _crd_schemas()

# The Prometheus Operator's resources (monitoring component) have no vendored
# CRD in crds/. Until they do, these focused schemas check the fields the
# component uses, strictly (an unknown or misspelt field fails), with the
# types and patterns of the operator's CRDs at v0.93.0 (prometheus-operator/
# prometheus-operator, commit f8fafd475f3d132e239432ae6172de60a6cb6516,
# example/prometheus-operator-crd/monitoring.coreos.com_{servicemonitors,prometheusrules}.yaml).
_DURATION = {
    "type": "string",
    "pattern": "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$",
}
_STRING = {"type": "string"}
_STRINGS = {"type": "array", "items": _STRING}
_STRING_MAP = {"type": "object", "additionalProperties": _STRING}


def _strict(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


def _custom_resource(api_version: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    metadata = _strict(
        {"name": _STRING, "namespace": _STRING, "labels": _STRING_MAP, "annotations": _STRING_MAP}, ("name",)
    )
    return _strict(
        {"apiVersion": {"const": api_version}, "kind": {"const": kind}, "metadata": metadata, "spec": spec},
        ("apiVersion", "kind", "metadata", "spec"),
    )


_LABEL_SELECTOR = _strict(
    {
        "matchLabels": _STRING_MAP,
        "matchExpressions": {
            "type": "array",
            "items": _strict({"key": _STRING, "operator": _STRING, "values": _STRINGS}, ("key", "operator")),
        },
    }
)
_ENDPOINT = _strict(
    {
        "port": _STRING,
        "targetPort": {"type": ["integer", "string"]},
        "path": _STRING,
        "scheme": {"enum": ["http", "https", "HTTP", "HTTPS"]},
        "interval": _DURATION,
        "scrapeTimeout": _DURATION,
        "honorLabels": {"type": "boolean"},
    }
)
_RULE = _strict(
    {
        "alert": _STRING,
        "record": _STRING,
        "expr": {"type": ["integer", "string"]},
        "for": _DURATION,
        "keep_firing_for": {**_DURATION, "minLength": 1},
        "labels": _STRING_MAP,
        "annotations": _STRING_MAP,
    },
    ("expr",),
)
_RULE_GROUP = _strict(
    {
        "name": {"type": "string", "minLength": 1},
        "interval": _DURATION,
        "limit": {"type": "integer"},
        "query_offset": _DURATION,
        "labels": _STRING_MAP,
        "rules": {"type": "array", "items": _RULE},
    },
    ("name",),
)
FOCUSED_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): _custom_resource(
        "monitoring.coreos.com/v1",
        "ServiceMonitor",
        _strict(
            {
                "jobLabel": _STRING,
                "targetLabels": _STRINGS,
                "podTargetLabels": _STRINGS,
                "selector": _LABEL_SELECTOR,
                "namespaceSelector": _strict({"any": {"type": "boolean"}, "matchNames": _STRINGS}),
                "endpoints": {"type": "array", "items": _ENDPOINT},
            },
            ("selector", "endpoints"),
        ),
    ),
    ("monitoring.coreos.com/v1", "PrometheusRule"): _custom_resource(
        "monitoring.coreos.com/v1",
        "PrometheusRule",
        _strict({"groups": {"type": "array", "items": _RULE_GROUP}}),
    ),
}
_validated: set[str] = set()


def validate(obj: Object) -> str | None:
    """None when valid, else why not."""
    key = json.dumps(obj, sort_keys=True)
    if key in _validated:
        return None
    name = f"{obj['kind']}/{obj['metadata']['name']}"
    api_kind = (obj["apiVersion"], obj["kind"])
    schema = CRD_SCHEMAS.get(api_kind) or FOCUSED_SCHEMAS.get(api_kind)
    if schema is not None:
        errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(obj), key=str)
        if errors:
            return f"{name}: " + "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)
    else:
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            kind = f"{obj['apiVersion']} {obj['kind']}"
            return f"{name}: {kind} is neither a Kubernetes {KUBERNETES_VERSION} kind nor a vendored CRD"
        except kubernetes_validate.ValidationError as exc:
            return f"{name}: {list(exc.path)}: {exc.message}"
    _validated.add(key)
    return None


def test_every_component_is_rendered_by_the_tests() -> None:
    assert {p.name for p in (K8S / "components").iterdir() if p.is_dir()} == set(COMPONENT_STACKS)


def test_vendored_crds_cover_the_custom_resources() -> None:
    assert set(CRD_SCHEMAS) == {
        ("kafka.strimzi.io/v1", "KafkaTopic"),
        ("keda.sh/v1alpha1", "ScaledObject"),
        ("keda.sh/v1alpha1", "TriggerAuthentication"),
        ("external-secrets.io/v1", "ExternalSecret"),
    }
    for schema in CRD_SCHEMAS.values():
        jsonschema.Draft202012Validator.check_schema(schema)


def test_focused_schemas_check_what_the_crds_do_not() -> None:
    """The Prometheus Operator's kinds are checked by FOCUSED_SCHEMAS (a vendored
    CRD in crds/ would take over); they too reject a misspelt field."""
    assert not set(FOCUSED_SCHEMAS) & set(CRD_SCHEMAS), "vendored now: drop its focused schema"
    for schema in FOCUSED_SCHEMAS.values():
        jsonschema.Draft202012Validator.check_schema(schema)
    monitor = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "m"},
        "spec": {"selector": {}, "endpoints": [{"port": "ops", "metricsPath": "/metrics"}]},
    }
    assert validate(monitor) is not None
    rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "r"},
        "spec": {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "up == 0", "for": "five minutes"}]}]},
    }
    assert validate(rule) is not None


@pytest.mark.parametrize("target", TARGETS)
def test_every_object_is_valid(rendered: Callable[[str], list[Object]], target: str) -> None:
    objects = rendered(target)
    assert objects
    errors = [error for error in map(validate, objects) if error]
    if errors:
        pytest.fail("\n".join(errors), pytrace=False)


def test_validation_rejects_unknown_fields() -> None:
    """The strict schemas catch a misspelt field (the API server would drop it silently)."""
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}, "spec": {"replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    topic = {
        "apiVersion": "kafka.strimzi.io/v1",
        "kind": "KafkaTopic",
        "metadata": {"name": "t"},
        "spec": {"partition": 6},
    }
    assert list(jsonschema.Draft202012Validator(CRD_SCHEMAS[("kafka.strimzi.io/v1", "KafkaTopic")]).iter_errors(topic))


@pytest.mark.parametrize("target", TARGETS)
def test_everything_lands_in_the_supportdesk_namespace(rendered: Callable[[str], list[Object]], target: str) -> None:
    for obj in rendered(target):
        if obj["kind"] == "Namespace":
            assert obj["metadata"]["name"] == "supportdesk"
        else:
            assert obj["metadata"].get("namespace") == "supportdesk", obj["metadata"]["name"]


# --- the services' pods --------------------------------------------------------------


@pytest.mark.parametrize("target", DEPLOYABLE)
def test_commands_and_images(rendered: Callable[[str], list[Object]], target: str) -> None:
    for name, deployment in services(rendered(target)):
        c = container(deployment)
        assert c["command"] == ["python", "-m", f"supportdesk_{name}"]
        assert c["image"].split("/")[-1].split(":")[0] == f"supportdesk-{name}"


@pytest.mark.parametrize("target", DEPLOYABLE)
def test_probes(rendered: Callable[[str], list[Object]], target: str) -> None:
    objects = rendered(target)
    provision_timeout = float(config(objects)["KAFKA_PROVISION_TIMEOUT_SECONDS"])
    for name, deployment in services(objects):
        c = container(deployment)
        port_names = {p["name"] for p in c["ports"]}
        expected = {"startupProbe": "/health/ready", "readinessProbe": "/health/ready", "livenessProbe": "/health"}
        for probe, path in expected.items():
            assert c[probe]["httpGet"] == {"path": path, "port": PROBE_PORT[name]}, (name, probe)
            assert c[probe]["httpGet"]["port"] in port_names
        startup = c["startupProbe"]
        budget = startup["periodSeconds"] * startup["failureThreshold"]
        # Start-up may wait for Kafka and the topics this long before giving up itself.
        assert budget > provision_timeout, name
        if name in MODEL_LOADERS:
            assert budget >= 300, f"{name}: the model load needs >= 5 minutes of startup probe"


@pytest.mark.parametrize("target", DEPLOYABLE)
def test_ports_equal_the_settings(rendered: Callable[[str], list[Object]], target: str) -> None:
    objects = rendered(target)
    for name, deployment in services(objects):
        env = container_env(objects, deployment)
        ports = {p["name"]: p["containerPort"] for p in container(deployment)["ports"]}
        assert set(ports) == set(PORTS[name]), name
        for port_name, setting in PORTS[name].items():
            assert str(ports[port_name]) == env[setting], f"{name}: port {port_name} != {setting}"
        assert env["OPS_HOST"] == "0.0.0.0", name
        if name == "gateway":
            assert env["GATEWAY_HOST"] == "0.0.0.0"
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(ports["ops"])
        assert annotations["prometheus.io/path"] == "/metrics"
        service = find(objects, "Service", f"supportdesk-{name}")
        assert selects({"matchLabels": service["spec"]["selector"]}, pod_labels(deployment))
        assert {p["name"]: p["targetPort"] for p in service["spec"]["ports"]} == {n: n for n in ports}
        assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == ports


@pytest.mark.parametrize("target", [*DEPLOYABLE, "components/kafka-topics-job"])
def test_pods_run_locked_down(rendered: Callable[[str], list[Object]], target: str) -> None:
    objects = rendered(target)
    for name, workload in workloads(objects):
        spec, c = pod(workload), container(workload)
        assert spec["automountServiceAccountToken"] is False, name
        account = find(objects, "ServiceAccount", spec["serviceAccountName"])
        assert account["automountServiceAccountToken"] is False, name
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == spec["securityContext"]["runAsGroup"] == 10001
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        security = c["securityContext"]
        assert security["readOnlyRootFilesystem"] is True, name
        assert security["allowPrivilegeEscalation"] is False, name
        assert security["capabilities"] == {"drop": ["ALL"]}, name
        assert security.get("runAsUser", 10001) == 10001
        assert not security.get("privileged", False)
        (tmp,) = [m["name"] for m in c["volumeMounts"] if m["mountPath"] == "/tmp"]
        assert "emptyDir" in next(v for v in spec["volumes"] if v["name"] == tmp), name
        env = {v["name"]: v.get("value") for v in c["env"]}
        assert env["HOME"] == "/tmp"
        assert env["PYTHONDONTWRITEBYTECODE"] == "1"
        assert container_env(objects, workload)["HF_HUB_OFFLINE"] == "1"
        assert spec["enableServiceLinks"] is False


@pytest.mark.parametrize("target", DEPLOYABLE)
def test_resources(rendered: Callable[[str], list[Object]], target: str) -> None:
    objects = rendered(target)
    for name, deployment in services(objects):
        resources = container(deployment)["resources"]
        requests, limits = resources["requests"], resources["limits"]
        assert set(requests) == set(limits) == {"cpu", "memory"}, name
        assert quantity(requests["cpu"]) <= 0.5, f"{name}: keep CPU requests modest"
        idle, busy = MEASURED_RSS_MIB[name]
        assert quantity(requests["memory"]) >= idle, name
        assert quantity(limits["memory"]) >= 1.2 * busy, f"{name}: memory limit without headroom"
        assert quantity(limits["memory"]) > quantity(requests["memory"])
        if name in MODEL_LOADERS:
            threads = container_env(objects, deployment)["TORCH_NUM_THREADS"]
            assert float(threads) == quantity(limits["cpu"]), f"{name}: TORCH_NUM_THREADS != CPU limit"


@pytest.mark.parametrize("target", DEPLOYABLE)
def test_shutdown_fits_the_grace_period(rendered: Callable[[str], list[Object]], target: str) -> None:
    objects = rendered(target)
    drain = float(config(objects)["SHUTDOWN_DRAIN_SECONDS"])
    for name, deployment in services(objects):
        c = container(deployment)
        assert c["lifecycle"]["preStop"] == {"exec": {"command": ["sleep", str(PRESTOP_SECONDS)]}}, name
        grace = pod(deployment)["terminationGracePeriodSeconds"]
        assert grace >= PRESTOP_SECONDS + drain + SHUTDOWN_MARGIN_SECONDS, name


@pytest.mark.parametrize("target", DEPLOYABLE)
def test_rollouts_and_spreading(rendered: Callable[[str], list[Object]], target: str) -> None:
    for name, deployment in services(rendered(target)):
        labels = pod_labels(deployment)
        assert labels["app.kubernetes.io/name"] == f"supportdesk-{name}"
        assert labels["app.kubernetes.io/component"] == name
        assert labels["app.kubernetes.io/part-of"] == "supportdesk"
        assert deployment["spec"]["strategy"] == {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        }
        spread = pod(deployment)["topologySpreadConstraints"]
        assert {s["topologyKey"] for s in spread} == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
        for constraint in spread:
            assert constraint["whenUnsatisfiable"] == "ScheduleAnyway"
            assert selects(constraint["labelSelector"], labels)


# --- tracing ---------------------------------------------------------------------------

_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
# The OpenTelemetry SDK's OTEL_TRACES_SAMPLER values.
SAMPLERS = {
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
}


def downward_env(workload: Object) -> dict[str, str]:
    """The container's `env` as the kubelet expands it, in order: a downward-API
    variable reads "<fieldPath>"; in a literal value, $(VAR) of a variable
    listed earlier is replaced, $$ is a $, any other reference stays as written.
    Secret and ConfigMap references are left out."""
    defined: dict[str, str] = {}

    def substitute(match: re.Match[str]) -> str:
        return "$" if match.group(0) == "$$" else defined.get(match.group(1), match.group(0))

    for var in container(workload)["env"]:
        if "value" in var:
            defined[var["name"]] = _REFERENCE.sub(substitute, var["value"])
        elif "fieldRef" in var.get("valueFrom", {}):
            defined[var["name"]] = f"<{var['valueFrom']['fieldRef']['fieldPath']}>"
    return defined


def test_downward_env_expands_like_the_kubelet() -> None:
    env = [
        {"name": "LATE", "value": "$(POD)"},  # POD is not defined yet: stays as written
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "A", "value": "pod=$(POD),escaped=$$(POD),unknown=$(NOPE)"},
    ]
    workload = {"spec": {"template": {"spec": {"containers": [{"env": env}]}}}}
    assert downward_env(workload) == {
        "LATE": "$(POD)",
        "POD": "<metadata.name>",
        "A": "pod=<metadata.name>,escaped=$(POD),unknown=$(NOPE)",
    }


@pytest.mark.parametrize("target", DEPLOYABLE)
def test_traces_name_the_service_and_its_pod(rendered: Callable[[str], list[Object]], target: str) -> None:
    objects = rendered(target)
    # `env` wins over `envFrom`: in the ConfigMap these would be silently ignored.
    assert not {"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"} & set(config(objects))
    for name, deployment in services(objects):
        env = downward_env(deployment)
        assert env["OTEL_SERVICE_NAME"] == f"supportdesk-{name}"
        attributes = dict(pair.split("=", 1) for pair in env["OTEL_RESOURCE_ATTRIBUTES"].split(","))
        # Each from the downward API, through a variable listed before it (or it stays "$(VAR)").
        assert attributes == {a: f"<{field}>" for a, field in RESOURCE_FIELDS.items()}, name


@pytest.mark.parametrize("target", DEPLOYABLE)
def test_tracing_settings(rendered: Callable[[str], list[Object]], target: str) -> None:
    from supportdesk_platform.settings import OtlpProtocol  # what the services accept

    settings = config(rendered(target))
    assert settings["OTEL_EXPORTER_OTLP_PROTOCOL"] in get_args(OtlpProtocol)
    assert settings["OTEL_TRACES_SAMPLER"] in SAMPLERS
    if settings["OTEL_TRACES_SAMPLER"].endswith("traceidratio"):
        assert 0 < float(settings["OTEL_TRACES_SAMPLER_ARG"]) <= 1
    endpoint = settings["OTEL_EXPORTER_OTLP_ENDPOINT"]
    if target == "base":
        assert endpoint == "", "tracing is off until an overlay names a collector"
    if endpoint:
        url = urlsplit(endpoint)
        assert url.scheme in ("http", "https"), endpoint
        assert url.port in OTLP, f"{endpoint}: the NetworkPolicy allows only {sorted(OTLP)}"


# --- secrets -------------------------------------------------------------------------


@pytest.mark.parametrize("target", [*TARGETS])
def test_secrets_come_only_from_the_secret(rendered: Callable[[str], list[Object]], target: str) -> None:
    objects = rendered(target)
    assert not SECRET_KEYS & set(config(objects)), "a secret in the ConfigMap"
    secrets = {o["metadata"]["name"] for o in of_kind(objects, "Secret")}
    for name, workload in workloads(objects):
        refs = {}
        for var in container(workload)["env"]:
            if var["name"] in SECRET_KEYS:
                assert "value" not in var, f"{name}: literal {var['name']}"
                ref = var["valueFrom"]["secretKeyRef"]
                assert ref["key"] == var["name"]
                assert ref["name"] == "supportdesk-secrets" or (
                    ref["name"] in secrets and ref["name"].startswith("supportdesk-secrets-")
                ), ref["name"]
                refs[var["name"]] = ref.get("optional", False)
        assert "envFrom" not in container(workload) or all("secretRef" not in s for s in container(workload)["envFrom"])
        required, optional = SECRETS[name]
        if config(objects).get("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").startswith("SASL"):
            # Then the login is required: a pod waits for it instead of failing its settings.
            sasl = {"KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"}
            required, optional = required | sasl, optional - sasl
        assert {k for k, opt in refs.items() if not opt} == required, name
        assert {k for k, opt in refs.items() if opt} == optional, name


def secret_key_refs(objects: list[Object]) -> set[str]:
    return {
        var["valueFrom"]["secretKeyRef"]["key"]
        for _, workload in workloads(objects)
        for var in container(workload)["env"]
        if "secretKeyRef" in var.get("valueFrom", {})
    }


def test_base_has_no_secret(rendered: Callable[[str], list[Object]]) -> None:
    assert not of_kind(rendered("base"), "Secret")


def test_dev_secret_provides_every_key(rendered: Callable[[str], list[Object]]) -> None:
    objects = rendered("overlays/dev")
    (secret,) = of_kind(objects, "Secret")
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert secret_key_refs(objects) <= set(data)
    assert data["ADMIN_API_KEY"] == "dev-admin-key"
    assert data["REDIS_URL"] == "redis://redis:6379/0"
    assert data["QDRANT_URL"] == "http://qdrant:6333"
    for key in data["SESSION_ENCRYPTION_KEYS"].split(","):
        assert len(base64.urlsafe_b64decode(key)) == 32, "not a Fernet key"
    for name, deployment in services(objects):  # the generated (hashed) name is what pods reference
        for var in container(deployment)["env"]:
            if "secretKeyRef" in var.get("valueFrom", {}):
                assert var["valueFrom"]["secretKeyRef"]["name"] == secret["metadata"]["name"], name
    assert "never" in (K8S / "overlays/dev/dev-secrets.env").read_text().lower()


@pytest.mark.parametrize("target", ["overlays/production", "components/external-secrets"])
def test_external_secret_maps_every_key(rendered: Callable[[str], list[Object]], target: str) -> None:
    objects = rendered(target)
    assert not of_kind(objects, "Secret"), "secrets come from the secret manager"
    (external,) = of_kind(objects, "ExternalSecret")
    assert external["spec"]["target"]["name"] == "supportdesk-secrets"
    assert external["spec"]["secretStoreRef"]["kind"] == "ClusterSecretStore"
    mapped = {d["secretKey"] for d in external["spec"]["data"]}
    assert secret_key_refs(objects) <= mapped
    assert mapped == SECRET_KEYS


def test_production_overlay_holds_no_secret_value() -> None:
    directory = K8S / "overlays/production"
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert "secretGenerator" not in kustomization
    dev_values = [
        line.split("=", 1)[1]
        for line in (K8S / "overlays/dev/dev-secrets.env").read_text().splitlines()
        if "=" in line and not line.startswith("#") and line.split("=", 1)[1]
    ]
    for path in directory.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert "kind: Secret\n" not in text, path
            assert not [v for v in dev_values if v in text], path
            assert not [k for k in SECRET_KEYS if f"{k}=" in text], path


# --- availability --------------------------------------------------------------------


def test_production_availability(rendered: Callable[[str], list[Object]]) -> None:
    objects = rendered("overlays/production")
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in of_kind(objects, "HorizontalPodAutoscaler")}
    pdbs = of_kind(objects, "PodDisruptionBudget")
    for name, deployment in services(objects):
        target = f"supportdesk-{name}"
        if target in hpas:
            # A fixed count would fight the autoscaler on every apply.
            assert "replicas" not in deployment["spec"], name
            assert hpas[target]["spec"]["minReplicas"] >= 2, name
        else:
            assert deployment["spec"]["replicas"] >= 2, name
        (pdb,) = [p for p in pdbs if selects(p["spec"]["selector"], pod_labels(deployment))]
        assert pdb["spec"].get("maxUnavailable") == 1 or pdb["spec"].get("minAvailable") == 1
    gateway = hpas["supportdesk-gateway"]["spec"]
    assert gateway["metrics"][0]["resource"]["name"] == "cpu"
    assert gateway["maxReplicas"] > gateway["minReplicas"]
    assert gateway["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 60
    assert set(hpas) == {"supportdesk-gateway"}, "workers scale by count or KEDA, not CPU"


def test_dev_runs_one_of_each(rendered: Callable[[str], list[Object]]) -> None:
    for _, deployment in services(rendered("overlays/dev")):
        assert deployment["spec"]["replicas"] == 1


def test_keda_scales_workers_up_to_the_partitions(rendered: Callable[[str], list[Object]]) -> None:
    objects = rendered("components/keda-autoscaling")
    settings = config(objects)
    scaled = {s["spec"]["scaleTargetRef"]["name"]: s for s in of_kind(objects, "ScaledObject")}
    assert set(scaled) == {f"supportdesk-{w}" for w in WORKERS}
    topics = {f"{settings['KAFKA_TOPIC_PREFIX']}.{t}.v1" for t in TOPICS}
    for worker in WORKERS:
        spec = scaled[f"supportdesk-{worker}"]["spec"]
        assert spec["minReplicaCount"] >= 1
        assert spec["maxReplicaCount"] <= int(settings["KAFKA_PARTITIONS"])
        (trigger,) = spec["triggers"]
        assert trigger["type"] == "kafka"
        metadata = trigger["metadata"]
        assert metadata["consumerGroup"] == f"supportdesk-{worker}"
        assert metadata["topic"] in topics
        assert int(metadata["lagThreshold"]) >= 1
        env = container_env(objects, find(objects, "Deployment", f"supportdesk-{worker}"))
        # KEDA reads the address from the Deployment's environment (the ConfigMap).
        assert metadata["bootstrapServersFromEnv"] == "KAFKA_BOOTSTRAP_SERVERS"
        assert "KAFKA_BOOTSTRAP_SERVERS" in env
    hpas = {h["spec"]["scaleTargetRef"]["name"] for h in of_kind(objects, "HorizontalPodAutoscaler")}
    assert hpas == {"supportdesk-gateway"}, "the gateway keeps its CPU autoscaler"


def test_keda_logs_in_like_the_services(rendered: Callable[[str], list[Object]]) -> None:
    objects = rendered("components/keda-kafka-tls-sasl")
    (auth,) = of_kind(objects, "TriggerAuthentication")
    params = {r["parameter"]: (r["name"], r["key"]) for r in auth["spec"]["secretTargetRef"]}
    assert params == {
        "username": ("supportdesk-secrets", "KAFKA_SASL_USERNAME"),
        "password": ("supportdesk-secrets", "KAFKA_SASL_PASSWORD"),
        "ca": ("supportdesk-kafka-tls", "ca.crt"),
    }
    assert config(objects)["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    for scaled in of_kind(objects, "ScaledObject"):
        (trigger,) = scaled["spec"]["triggers"]
        assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
        assert trigger["metadata"]["sasl"] == "scram_sha512"
        assert trigger["metadata"]["tls"] == "enable"


# --- network -------------------------------------------------------------------------


def policies_for(objects: list[Object], workload: Object, kind: str) -> list[dict[str, Any]]:
    """The rules of `kind` (Ingress/Egress) of every policy selecting the workload's pods."""
    rules: list[dict[str, Any]] = []
    for policy in of_kind(objects, "NetworkPolicy"):
        spec = policy["spec"]
        if kind in spec["policyTypes"] and selects(spec["podSelector"], pod_labels(workload)):
            rules.extend(spec.get(kind.lower(), []))
    return rules


@pytest.mark.parametrize("target", [*DEPLOYABLE, "components/kafka-topics-job"])
def test_network_policies(rendered: Callable[[str], list[Object]], target: str) -> None:
    objects = rendered(target)
    everything = [p["spec"] for p in of_kind(objects, "NetworkPolicy") if p["spec"]["podSelector"] == {}]
    deny = [p for p in everything if "ingress" not in p and "egress" not in p]
    assert [p["policyTypes"] for p in deny] == [["Ingress", "Egress"]], "default deny of both directions"
    for name, workload in workloads(objects):
        egress = policies_for(objects, workload, "Egress")
        assert all("to" not in rule or name not in SERVICES for rule in egress), "external dependencies: by port"
        ports = {port_number(p["port"], workload) for rule in egress for p in rule["ports"]}
        assert ports == EGRESS[name] | {53}, name
        ingress = policies_for(objects, workload, "Ingress")
        allowed = {
            (peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"], port_number(p["port"], workload))
            for rule in ingress
            for peer in rule["from"]
            for p in rule["ports"]
        }
        if name == "topics":
            assert allowed == set()
            continue
        ops = port_number("ops", workload)
        expected = {("monitoring", ops)}
        if name == "gateway":
            expected.add(("ingress-nginx", port_number("http", workload)))
        assert allowed == expected, name


@pytest.mark.parametrize("target", DEPLOYABLE)
def test_every_service_may_send_traces(rendered: Callable[[str], list[Object]], target: str) -> None:
    """OTLP gRPC and HTTP to any address: the collector's is not known here."""
    objects = rendered(target)
    for name, deployment in services(objects):
        allowed = {
            (p.get("protocol", "TCP"), port_number(p["port"], deployment))
            for rule in policies_for(objects, deployment, "Egress")
            if "to" not in rule
            for p in rule["ports"]
        }
        assert {("TCP", port) for port in OTLP} <= allowed, name


def test_dev_dependencies_accept_only_their_clients(rendered: Callable[[str], list[Object]]) -> None:
    objects = rendered("overlays/dev")
    clients = {
        "kafka": set(SERVICES),
        "redis": {"gateway", "session", "agent", "ingest"},
        "qdrant": {"agent", "ingest"},
    }
    for dependency, allowed_clients in clients.items():
        server = find(objects, "StatefulSet", dependency)
        rules = policies_for(objects, server, "Ingress")
        for name, deployment in services(objects):
            reaches = any(
                selects(peer["podSelector"], pod_labels(deployment))
                for rule in rules
                for peer in rule["from"]
                if "podSelector" in peer and "namespaceSelector" not in peer
            )
            assert reaches == (name in allowed_clients), f"{name} -> {dependency}"


def test_ingress_exposes_only_the_public_api(rendered: Callable[[str], list[Object]]) -> None:
    for overlay in OVERLAYS:
        objects = rendered(f"overlays/{overlay}")
        (ingress,) = of_kind(objects, "Ingress")
        gateway = find(objects, "Deployment", "supportdesk-gateway")
        service = find(objects, "Service", "supportdesk-gateway")
        service_ports = {p["name"]: p for p in service["spec"]["ports"]}
        annotations = ingress["metadata"]["annotations"]
        assert ingress["spec"]["ingressClassName"] == "nginx"
        assert annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "3600"
        assert annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"] == "3600"
        assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "11m"
        assert not [a for a in annotations if "affinity" in a or "sticky" in a], "no sticky sessions needed"
        paths = set()
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                paths.add(path["path"])
                backend = path["backend"]["service"]
                assert backend["name"] == "supportdesk-gateway"
                port = backend["port"]
                service_port = (
                    service_ports[port["name"]]
                    if "name" in port
                    else next(p for p in service_ports.values() if p["port"] == port["number"])
                )
                assert port_number(service_port["targetPort"], gateway) == port_number("http", gateway), path
        assert paths == PUBLIC_PATHS


# --- Kafka topics and TLS ----------------------------------------------------------------


def test_strimzi_topics(rendered: Callable[[str], list[Object]]) -> None:
    objects = rendered("components/kafka-topics-strimzi")
    settings = config(objects)
    assert settings["KAFKA_CREATE_TOPICS"] == "false"
    topics = {t["spec"]["topicName"]: t for t in of_kind(objects, "KafkaTopic")}
    assert set(topics) == {f"{settings['KAFKA_TOPIC_PREFIX']}.{t}.v1" for t in TOPICS}
    for name, topic in topics.items():
        spec = topic["spec"]
        assert spec["partitions"] == int(settings["KAFKA_PARTITIONS"])
        assert spec["replicas"] == 3
        assert spec["config"]["min.insync.replicas"] == 2
        days = 14 if name.endswith(".deadletter.v1") else 7
        assert spec["config"]["retention.ms"] == days * DAY_MS, name
        assert topic["metadata"]["labels"]["strimzi.io/cluster"]


@pytest.mark.parametrize("target", ["components/kafka-topics-job", "overlays/production"])
def test_topics_job(rendered: Callable[[str], list[Object]], target: str) -> None:
    objects = rendered(target)
    (job,) = of_kind(objects, "Job")
    c = container(job)
    assert c["command"] == ["python", "-m", "supportdesk_platform.topics"]
    assert c["image"] == container(find(objects, "Deployment", "supportdesk-gateway"))["image"]
    assert job["spec"]["backoffLimit"] >= 1
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    assert pod(job)["restartPolicy"] in ("Never", "OnFailure")
    assert config(objects)["KAFKA_CREATE_TOPICS"] == "false"


@pytest.mark.parametrize("target", ["components/kafka-tls-sasl", "overlays/production"])
def test_kafka_tls_sasl(rendered: Callable[[str], list[Object]], target: str) -> None:
    objects = rendered(target)
    settings = config(objects)
    assert settings["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert settings["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert settings["KAFKA_SSL_CAFILE"] == "/etc/kafka-tls/ca.crt"
    names = set()
    for name, workload in workloads(objects):
        names.add(name)
        volumes = {v["name"]: v for v in pod(workload)["volumes"]}
        (mount,) = [m for m in container(workload)["volumeMounts"] if m["mountPath"] == "/etc/kafka-tls"]
        assert mount["readOnly"] is True, name
        assert volumes[mount["name"]]["secret"]["secretName"] == "supportdesk-kafka-tls", name
        refs = {v["name"] for v in container(workload)["env"] if "secretKeyRef" in v.get("valueFrom", {})}
        assert {"KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"} <= refs, name
    assert "topics" in names, "the topics Job talks to Kafka too"


# --- monitoring (Prometheus Operator) ------------------------------------------------------


def compose_rule_groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load(ALERT_RULES.read_text())["groups"]
    return groups


@pytest.mark.parametrize("target", MONITORED)
def test_service_monitor_scrapes_every_ops_port(rendered: Callable[[str], list[Object]], target: str) -> None:
    objects = rendered(target)
    monitors = of_kind(objects, "ServiceMonitor")
    compose_jobs = {job["job_name"] for job in yaml.safe_load(COMPOSE_PROMETHEUS.read_text())["scrape_configs"]}
    scraped = set()
    for monitor in monitors:
        assert "namespaceSelector" not in monitor["spec"], "its own namespace, wherever that is"
        for service in of_kind(objects, "Service"):
            if selects(monitor["spec"]["selector"], service["metadata"]["labels"]):
                scraped.add(service["metadata"]["name"])
    assert scraped == {f"supportdesk-{name}" for name in SERVICES}
    for name, deployment in services(objects):
        service = find(objects, "Service", f"supportdesk-{name}")
        (monitor,) = [m for m in monitors if selects(m["spec"]["selector"], service["metadata"]["labels"])]
        (endpoint,) = monitor["spec"]["endpoints"]
        (port,) = [p for p in service["spec"]["ports"] if p["name"] == endpoint["port"]]
        assert port_number(port["targetPort"], deployment) == port_number("ops", deployment), name
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert endpoint["path"] == annotations["prometheus.io/path"] == "/metrics"
        # The rules select on the compose profile's job names (job=~"gateway|..."): same job label here.
        job = service["metadata"]["labels"][monitor["spec"]["jobLabel"]]
        assert job == name, name
        assert job in compose_jobs, f"{job}: not a job of {COMPOSE_PROMETHEUS.name}"


@pytest.mark.parametrize("target", MONITORED)
def test_prometheus_rule_is_the_compose_rule_file(rendered: Callable[[str], list[Object]], target: str) -> None:
    """kustomize cannot read deploy/observability/alerts.yml (outside its root),
    so the component keeps a generated copy; it must never drift."""
    (rule,) = of_kind(rendered(target), "PrometheusRule")
    ours, theirs = rule["spec"]["groups"], compose_rule_groups()
    if ours != theirs:
        mine, compose = {g["name"]: g for g in ours}, {g["name"]: g for g in theirs}
        differing = sorted(n for n in mine.keys() | compose.keys() if mine.get(n) != compose.get(n)) or "their order"
        pytest.fail(
            f"the PrometheusRule's groups differ from {ALERT_RULES.name} in {differing}: run `{SYNC_RULES}`",
            pytrace=False,
        )


def test_sync_rules_writes_the_groups_of_the_rule_file(tmp_path: Path) -> None:
    component = tmp_path / "deploy/k8s/components/monitoring"
    component.mkdir(parents=True)
    (tmp_path / "deploy/observability").mkdir()
    shutil.copy(K8S / "components/monitoring/sync-rules.sh", component)
    groups = [{"name": "g", "rules": [{"alert": "SupportDeskX", "expr": "up == 0", "for": "1m"}]}]
    (tmp_path / "deploy/observability/alerts.yml").write_text("# a comment\n" + yaml.safe_dump({"groups": groups}))
    subprocess.run(["sh", str(component / "sync-rules.sh")], check=True, capture_output=True)
    rule = yaml.safe_load((component / "prometheusrule.yaml").read_text())
    assert rule["kind"] == "PrometheusRule"
    assert rule["spec"] == {"groups": groups}


# --- overlays ----------------------------------------------------------------------------


def test_dev_settings_and_dependencies(rendered: Callable[[str], list[Object]]) -> None:
    objects = rendered("overlays/dev")
    settings = config(objects)
    assert settings["ENVIRONMENT"] == "development"
    assert settings["KAFKA_CREATE_TOPICS"] == "true"
    assert settings["LOAD_SAMPLE_KNOWLEDGE"] == "true"
    assert settings["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    images = {"kafka": "apache/kafka:3.9.0", "redis": "redis:7.4-alpine", "qdrant": "qdrant/qdrant:v1.12.4"}
    for name, image in images.items():
        statefulset = find(objects, "StatefulSet", name)
        c = container(statefulset)
        assert c["image"] == image
        assert {"startupProbe", "readinessProbe", "livenessProbe", "resources"} <= set(c), name
        assert {"requests", "limits"} <= set(c["resources"]), name
        assert pod(statefulset)["securityContext"]["runAsNonRoot"] is True, name
        assert c["securityContext"]["allowPrivilegeEscalation"] is False, name
        assert statefulset["spec"]["volumeClaimTemplates"], f"{name} keeps its data on a volume"
        assert find(objects, "Service", name)
    kafka = {v["name"]: v["value"] for v in container(find(objects, "StatefulSet", "kafka"))["env"]}
    assert kafka["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert kafka["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert kafka["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert kafka["KAFKA_LISTENERS"].split(",") == ["PLAINTEXT://:9092", "CONTROLLER://localhost:9093"]
    assert kafka["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"
    assert len(base64.urlsafe_b64decode(kafka["CLUSTER_ID"] + "==")) == 16
    redis = container(find(objects, "StatefulSet", "redis"))["args"]
    assert redis[redis.index("--appendonly") + 1] == "yes"
    for _, deployment in services(objects):
        assert container(deployment)["image"].endswith(":dev")


def test_production_settings(rendered: Callable[[str], list[Object]]) -> None:
    objects = rendered("overlays/production")
    settings = config(objects)
    assert settings["ENVIRONMENT"] == "production"
    assert settings["KAFKA_REPLICATION_FACTOR"] == "3"
    assert settings["KAFKA_CREATE_TOPICS"] == "false"
    assert settings["LOAD_SAMPLE_KNOWLEDGE"] == "false"
    assert not of_kind(objects, "StatefulSet"), "Kafka, Redis and Qdrant are external in production"
    for _, workload in workloads(objects):
        image = container(workload)["image"]
        tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
        assert (tag and tag not in ("latest", "dev")) or "@sha256:" in image, image
    (ingress,) = of_kind(objects, "Ingress")
    assert ingress["spec"]["tls"]
    assert all(rule.get("host") for rule in ingress["spec"]["rules"])

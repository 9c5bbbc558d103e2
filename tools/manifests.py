"""The Kubernetes objects a kustomize directory of deploy/k8s renders to.

    from manifests import container_env, find, render

    objects = render("deploy/k8s/overlays/dev")            # one dict per object
    gateway = find(objects, "Deployment", "supportdesk-gateway")
    env = container_env(objects, gateway)                  # {"GATEWAY_PORT": "8000", ...}

Used by tests/unit/deploy/test_manifests.py and by tests that run what the
manifests describe. Needs `kubectl` (built-in kustomize v5) on PATH; no cluster.
"""

import base64
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # no types-PyYAML in the dev tools

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"

Object = dict[str, Any]


class RenderError(RuntimeError):
    """kubectl is missing or `kubectl kustomize` failed (the message says which)."""


def render(path: str | Path) -> list[Object]:
    """`kubectl kustomize <path>` parsed; a relative path is taken from the repository root."""
    directory = Path(path) if Path(path).is_absolute() else ROOT / path
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise RenderError(
            "kubectl is not on PATH: install kubectl (>= 1.27, built-in kustomize v5) to render deploy/k8s"
        )
    result = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RenderError(f"kubectl kustomize {directory} failed:\n{result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def find(objects: list[Object], kind: str, name: str) -> Object:
    """The one object of that kind and name (names of generated ConfigMaps and Secrets carry a hash suffix)."""
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    if len(matches) != 1:
        raise KeyError(f"{len(matches)} objects {kind}/{name}")
    return matches[0]


def container_env(objects: list[Object], workload: Object, container: int = 0) -> dict[str, str]:
    """The environment a workload's container gets: envFrom ConfigMaps and Secrets,
    then `env` (literal values, configMapKeyRef, secretKeyRef). References to
    objects not in `objects` (e.g. a Secret made by an ExternalSecret) and
    missing optional keys are left out."""
    spec = workload["spec"]["template"]["spec"]["containers"][container]
    data = {(o["kind"], o["metadata"]["name"]): _data(o) for o in objects if o["kind"] in ("ConfigMap", "Secret")}
    env: dict[str, str] = {}
    for source in spec.get("envFrom", []):
        for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if key in source:
                env.update(
                    {source.get("prefix", "") + k: v for k, v in data.get((kind, source[key]["name"]), {}).items()}
                )
    for var in spec.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
            continue
        value_from = var.get("valueFrom", {})
        for kind, key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
            if key in value_from:
                ref = value_from[key]
                value = data.get((kind, ref["name"]), {}).get(ref["key"])
                if value is not None:
                    env[var["name"]] = value
    return env


def _data(obj: Object) -> dict[str, str]:
    values = {k: str(v) for k, v in obj.get("data", {}).items()}
    if obj["kind"] == "Secret":
        values = {k: base64.b64decode(v).decode() for k, v in values.items()}
        values.update({k: str(v) for k, v in obj.get("stringData", {}).items()})
    return values

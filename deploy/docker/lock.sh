#!/usr/bin/env bash
# Regenerates deploy/docker/constraints.txt: the exact version of every
# third-party package the four service images install, resolved by pip from
# the dependencies declared in libs/*/pyproject.toml and services/*/pyproject.toml
# (not from requirements.txt, which also carries the dev-only local broker).
#
#   deploy/docker/lock.sh            # after changing any pyproject's dependencies
#   deploy/docker/lock.sh --verify   # and then check that each image's package
#                                    # set resolves against the pins (dry runs)
#
# Run it with the Python the images use (3.11, Linux x86_64): markers are
# evaluated for the interpreter that runs it. torch is pinned to the version
# the images install from TORCH_INDEX_URL (CPU build); a local wheel folder is
# used when present (TORCH_FIND_LINKS, default /opt/wheels), else the PyTorch
# CPU index.
set -euo pipefail

cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
TORCH_FIND_LINKS=${TORCH_FIND_LINKS:-/opt/wheels}
TORCH_INDEX_URL=${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}
OUT=deploy/docker/constraints.txt

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ -d "$TORCH_FIND_LINKS" ]; then
  torch_source=(--find-links "$TORCH_FIND_LINKS")
else
  torch_source=(--extra-index-url "$TORCH_INDEX_URL")
fi

# pip, quietly: --dry-run resolves without installing, --report writes what
# it would install.
resolve() {
  PYTHONWARNINGS=ignore "$PYTHON" -m pip --disable-pip-version-check install \
    --dry-run --ignore-installed --quiet "$@"
}

{
  echo "torch==${TORCH_VERSION}"
  for dir in libs/* services/*; do
    if [ -f "$dir/pyproject.toml" ]; then echo "./$dir"; fi
  done
} >"$tmp/requirements.txt"

resolve --report "$tmp/report.json" "${torch_source[@]}" -r "$tmp/requirements.txt"

"$PYTHON" - "$tmp/report.json" "$TORCH_VERSION" >"$tmp/constraints.txt" <<'PY'
import json
import re
import sys

report_path, torch_version = sys.argv[1], sys.argv[2]
with open(report_path) as f:
    report = json.load(f)

pins = {}
for item in report["install"]:
    meta = item["metadata"]
    name = re.sub(r"[-_.]+", "-", meta["name"]).lower()
    if name.startswith("supportdesk-"):
        continue  # our own packages: installed from the tree with --no-deps
    version = meta["version"]
    if name == "torch":
        if version.split("+")[0] != torch_version:
            sys.exit(f"resolved torch {version}, wanted {torch_version}")
        version = torch_version  # `torch==X` also matches the local X+cpu build
    pins[name] = version

if "torch" not in pins:
    sys.exit("torch missing from the resolution")

print("# Exact versions of every third-party package in the SupportDesk images")
print("# (all four services together; each image installs its own subset).")
print("# Generated from the dependencies in libs/*/pyproject.toml and")
print("# services/*/pyproject.toml; do not edit by hand. To regenerate and check:")
print("#   deploy/docker/lock.sh --verify")
print("# Used as `pip install -c deploy/docker/constraints.txt ...` in the Dockerfile.")
print(f"# Resolved for CPython {sys.version_info.major}.{sys.version_info.minor} on Linux x86_64.")
for name in sorted(pins):
    print(f"{name}=={pins[name]}")
PY
mv "$tmp/constraints.txt" "$OUT"
echo "wrote $OUT ($(grep -c '==' "$OUT") pins)"

[ "${1:-}" = --verify ] || exit 0

# What each image installs (the Dockerfile's package sets), resolved with the
# pins as constraints: a missing or conflicting pin fails here, not in a build.
for service in gateway session agent ingest; do
  packages=(./libs/contracts ./libs/platform ./libs/sessions ./libs/documents)
  extra=()
  case $service in
    agent | ingest)
      packages+=(./libs/knowledge "torch==${TORCH_VERSION}")
      extra=("${torch_source[@]}")
      ;;
  esac
  packages+=("./services/$service")
  resolve --report "$tmp/$service.json" "${extra[@]}" -c "$OUT" "${packages[@]}"
  "$PYTHON" - "$tmp/$service.json" "$service" "$OUT" <<'PY'
import json
import re
import sys

report_path, service, constraints = sys.argv[1:]
with open(report_path) as f:
    report = json.load(f)
pinned = {}
with open(constraints) as f:
    for line in f:
        if "==" in line and not line.startswith("#"):
            name, version = line.strip().split("==")
            pinned[name] = version
problems = []
names = set()
for item in report["install"]:
    name = re.sub(r"[-_.]+", "-", item["metadata"]["name"]).lower()
    if name.startswith("supportdesk-"):
        continue
    names.add(name)
    version = item["metadata"]["version"].split("+")[0]
    if pinned.get(name) != version:
        problems.append(f"{name} {version} not pinned")
    if not item["download_info"]["url"].endswith(".whl"):
        problems.append(f"{name}: no wheel ({item['download_info']['url']})")
if ("torch" in names) != (service in ("agent", "ingest")):
    problems.append("torch " + ("present" if "torch" in names else "missing"))
if problems:
    sys.exit(f"{service}: " + "; ".join(problems))
print(f"{service}: {len(names)} third-party packages, all pinned, all wheels, torch={'torch' in names}")
PY
done

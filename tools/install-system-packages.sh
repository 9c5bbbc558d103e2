#!/usr/bin/env bash
# System packages the tests use: redis-server (the tests start their own) and
# Debian's Chromium (the chat page is tested in a real browser; Playwright
# never downloads one). Installs only what is missing.
set -euo pipefail
# kubectl (with its built-in kustomize v5) renders deploy/k8s in the tests. It
# is not in Debian's archive at a usable version (kubernetes-client 1.20 has
# kustomize v2): install it from your distribution of Kubernetes if missing.
command -v kubectl >/dev/null 2>&1 || echo "warning: kubectl not found; the deploy/k8s tests will fail" >&2
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}" >&2
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null

#!/usr/bin/env bash
# Installs everything serve_core, its tests, examples and benchmarks need on a fresh
# Debian machine with Python 3.11. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# apt_install WHY PACKAGE...: install with apt as root, or say what to run and why.
apt_install() {
    local why=$1
    shift
    if [ "$(id -u)" = "0" ]; then
        echo "[deps] installing $* (apt)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
    else
        echo "[deps] missing $*: run 'sudo apt-get install $*' (needed by $why)" >&2
    fi
}

command -v wrk >/dev/null 2>&1 || apt_install "the benchmarks" wrk

# `serve-core cluster up` runs Redis and Prometheus, and as root puts each node in a network
# namespace (iproute2) behind a bridge that needs an iptables FORWARD rule.
cluster_missing=()
for tool_pkg in redis-server:redis-server prometheus:prometheus ip:iproute2 iptables:iptables; do
    command -v "${tool_pkg%%:*}" >/dev/null 2>&1 || cluster_missing+=("${tool_pkg##*:}")
done
[ ${#cluster_missing[@]} -eq 0 ] || apt_install "serve-core cluster" "${cluster_missing[@]}"

# The docker compose testbed (compose/, tests/e2e/test_compose.py): a Docker engine, compose, and
# debootstrap for the local base image (no image registry is reachable here). dockerd is started
# by compose/dockerd.sh (and by the test), not here.
docker_missing=()
command -v dockerd >/dev/null 2>&1 || docker_missing+=(docker.io)
{ docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1; } || docker_missing+=(docker-compose)
command -v debootstrap >/dev/null 2>&1 || docker_missing+=(debootstrap)
[ ${#docker_missing[@]} -eq 0 ] || apt_install "the compose testbed" "${docker_missing[@]}"

# The live view's browser test (tests/e2e/test_chaos_run.py): Debian's chromium, driven by
# Playwright (whose own browser download is not reachable here).
command -v chromium >/dev/null 2>&1 || apt_install "the live view's browser test" chromium

# kubectl's built-in kustomize builds k8s/ in tests/unit/test_k8s_manifests.py (no cluster needed).
command -v kubectl >/dev/null 2>&1 || apt_install "the KubeRay manifests' check" kubectl

PY=${PYTHON:-python3}
# torch 2.13.0 is the CPU build available locally; pin it first so nothing pulls a CUDA build.
if ! $PY -c "import torch" >/dev/null 2>&1; then
    echo "[deps] installing torch==2.13.0 (CPU)"
    $PY -m pip install -q "torch==2.13.0"
fi
echo "[deps] installing serve-core with extras dev, compare, examples, testbed"
$PY -m pip install -q -e ".[dev,compare,examples,testbed]"

#!/usr/bin/env bash
# Installs everything serve_core, its tests, examples and benchmarks need on a fresh
# Debian machine with Python 3.11. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ]; then
        echo "[deps] installing wrk (apt)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
    else
        echo "[deps] wrk is missing: run 'sudo apt-get install wrk' (needed by the benchmarks)" >&2
    fi
fi

# `serve-core cluster up` runs Redis and Prometheus, and as root puts each node in a network
# namespace (iproute2) behind a bridge that needs an iptables FORWARD rule.
cluster_missing=()
for tool_pkg in redis-server:redis-server prometheus:prometheus ip:iproute2 iptables:iptables; do
    command -v "${tool_pkg%%:*}" >/dev/null 2>&1 || cluster_missing+=("${tool_pkg##*:}")
done
if [ ${#cluster_missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = "0" ]; then
        echo "[deps] installing ${cluster_missing[*]} (apt)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${cluster_missing[@]}" >/dev/null
    else
        echo "[deps] missing ${cluster_missing[*]}: run 'sudo apt-get install ${cluster_missing[*]}' (needed by serve-core cluster)" >&2
    fi
fi

# The docker compose testbed (compose/, tests/e2e/test_compose.py): a Docker engine, compose, and
# debootstrap for the local base image (no image registry is reachable here). dockerd is started
# by compose/dockerd.sh (and by the test), not here.
docker_missing=()
command -v dockerd >/dev/null 2>&1 || docker_missing+=(docker.io)
{ docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1; } || docker_missing+=(docker-compose)
command -v debootstrap >/dev/null 2>&1 || docker_missing+=(debootstrap)
if [ ${#docker_missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = "0" ]; then
        echo "[deps] installing ${docker_missing[*]} (apt)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${docker_missing[@]}" >/dev/null
    else
        echo "[deps] missing ${docker_missing[*]}: run 'sudo apt-get install ${docker_missing[*]}' (needed by the compose testbed)" >&2
    fi
fi

# The live view's browser test (tests/e2e/test_chaos_run.py): Debian's chromium, driven by
# Playwright (whose own browser download is not reachable here).
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ]; then
        echo "[deps] installing chromium (apt)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "[deps] chromium is missing: run 'sudo apt-get install chromium' (needed by the live view's browser test)" >&2
    fi
fi

PY=${PYTHON:-python3}
# torch 2.13.0 is the CPU build available locally; pin it first so nothing pulls a CUDA build.
if ! $PY -c "import torch" >/dev/null 2>&1; then
    echo "[deps] installing torch==2.13.0 (CPU)"
    $PY -m pip install -q "torch==2.13.0"
fi
echo "[deps] installing serve-core with extras dev, compare, examples, testbed"
$PY -m pip install -q -e ".[dev,compare,examples,testbed]"

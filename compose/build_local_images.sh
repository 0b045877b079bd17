#!/usr/bin/env bash
# Build every image the compose testbed needs from local parts, without an image registry:
#
#   1. serve-core-base:bookworm    debootstrap --variant=minbase bookworm, docker import
#   2. serve-core-python:3.11      base + python3.11 in a venv   (stands in for python:3.11-slim)
#      serve-core-redis:7          base + redis-server           (stands in for redis:7)
#      serve-core-prometheus:local base + prometheus             (stands in for prom/prometheus)
#   3. serve-core:latest           the repo's Dockerfile FROM serve-core-python:3.11
#
# Builds use --network host so apt and pip reach their registries. Idempotent: an image that
# exists is kept (FORCE=1 rebuilds steps 2 and 3, FORCE_BASE=1 step 1 too); step 3 always runs
# and docker's layer cache makes it quick when only the code changed. Needs root and dockerd
# (bash compose/dockerd.sh start). Grafana has no local stand-in.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOTFS=${ROOTFS:-/tmp/serve-core-rootfs}
BASE=serve-core-base:bookworm
PY=serve-core-python:3.11
REDIS=serve-core-redis:7
PROM=serve-core-prometheus:local
PROJECT=${SERVE_CORE_IMAGE:-serve-core:latest}
export DOCKER_BUILDKIT=0   # the classic builder: no buildx plugin is needed
t0=$(date +%s)
say() { echo "[images +$(( $(date +%s) - t0 ))s] $*"; }
have() { docker image inspect "$1" >/dev/null 2>&1; }

mirror() {  # the Debian mirror this machine's apt uses
    local m=""
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        m=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
    fi
    if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
        m=$(awk '$1 == "deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list)
    fi
    echo "${m:-http://deb.debian.org/debian}"
}

pip_args=()  # the package index pip uses here (when it is an http one), passed on to the builds
index=${PIP_INDEX_URL:-$(pip config get global.index-url 2>/dev/null || true)}
case "$index" in http*) pip_args+=(--build-arg "PIP_INDEX_URL=$index") ;; esac

docker info >/dev/null 2>&1 || { echo "no Docker engine answers: bash compose/dockerd.sh start" >&2; exit 3; }

if ! have "$BASE" || [ "${FORCE_BASE:-0}" = 1 ]; then
    command -v debootstrap >/dev/null || { echo "debootstrap is missing: apt-get install debootstrap" >&2; exit 3; }
    m=$(mirror)
    say "debootstrap --variant=minbase bookworm from $m (a few minutes)"
    rm -rf "$ROOTFS"
    debootstrap --variant=minbase bookworm "$ROOTFS" "$m" >/tmp/serve-core-debootstrap.log 2>&1 \
        || { tail -20 /tmp/serve-core-debootstrap.log >&2; exit 3; }
    say "importing $ROOTFS as $BASE"
    tar -C "$ROOTFS" -c . | docker import -c 'CMD ["bash"]' -c 'ENV LANG=C.UTF-8' - "$BASE" >/dev/null
    rm -rf "$ROOTFS"
else
    say "$BASE exists"
fi

build() {  # image dockerfile: built in a context of the Dockerfile and this machine's CA bundle
    local image=$1 file=$2 context
    context=$(mktemp -d)
    cp "$file" "$context/Dockerfile"
    cp "${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}" "$context/host-ca-bundle.crt" 2>/dev/null \
        || : >"$context/host-ca-bundle.crt"   # empty: the image keeps its own bundle
    say "building $image ($file)"
    if ! docker build --network host -t "$image" --build-arg "BASE_IMAGE=$BASE" "$context" \
            >/tmp/serve-core-image-build.log 2>&1; then
        tail -30 /tmp/serve-core-image-build.log >&2
        echo "$image was not built (log above)" >&2
        exit 3
    fi
    rm -rf "$context"
}
for spec in "$PY:compose/images/python.Dockerfile" "$REDIS:compose/images/redis.Dockerfile" \
            "$PROM:compose/images/prometheus.Dockerfile"; do
    image=${spec%%:compose*}; file=${spec#"$image":}
    if ! have "$image" || [ "${FORCE:-0}" = 1 ]; then build "$image" "$file"; else say "$image exists"; fi
done

say "building $PROJECT (Dockerfile, FROM $PY; log in /tmp/serve-core-image-build.log)"
if ! docker build --network host -t "$PROJECT" --build-arg "BASE_IMAGE=$PY" "${pip_args[@]}" . \
        >/tmp/serve-core-image-build.log 2>&1; then
    tail -30 /tmp/serve-core-image-build.log >&2
    echo "the project image was not built (log above)" >&2
    exit 3
fi
grep -E '^Step' /tmp/serve-core-image-build.log | sed 's/^/    /'
say "done: $BASE $PY $REDIS $PROM $PROJECT"

#!/usr/bin/env bash
# Entry point of the compose services that run Ray: `node.sh head`, `node.sh worker`.
#
# Every node: token auth with the token in the file RAY_AUTH_TOKEN_PATH names (a compose secret;
# the token itself is never on a command line or in the container's environment), its proxy on
# its own address (node label serve-core/proxy-host), Ray's metrics on port 8080, the embedded
# cluster's tightened node health checks (embedded_cluster/ray_nodes.py; set in the
# compose file). Runs as serve (uid 1000).
# The head: GCS fault tolerance in Redis over TLS with a client certificate (RAY_REDIS_ADDRESS
# rediss://..., RAY_REDIS_CA_CERT, RAY_REDIS_CLIENT_CERT/KEY; Redis has no password), no CPUs for
# replicas (losing it leaves the workers' replicas serving), and serve_core started once Ray
# answers (its controller and the proxies on every node), and the Prometheus target refresher
# (compose/targets_sidecar.py, writing into the shared `targets` volume). A worker waits for the head's GCS,
# then joins. `ray start --block` exits when its node dies; the restart policy brings it back.
set -euo pipefail
role=${1:?usage: node.sh head|worker}
readable() { [ -r "$1" ] || { echo "[node] cannot read $1 ($2): run bash compose/init_env.sh" >&2; exit 3; }; }
readable "${RAY_AUTH_TOKEN_PATH:?set RAY_AUTH_TOKEN_PATH (the compose file does)}" "Ray's token"
export RAY_AUTH_MODE=token
unset RAY_AUTH_TOKEN   # the file is the one source
head_ip=${SERVE_CORE_HEAD_IP:?}
gcs_port=${SERVE_CORE_GCS_PORT:-6379}
ip=$(hostname -i | awk '{print $1}')
rm -rf /tmp/ray   # a restarted container starts a fresh Ray session (its old processes are gone)
common=(--block "--node-ip-address=$ip" --num-gpus=0 --metrics-export-port=8080
        "--object-store-memory=${SERVE_CORE_OBJECT_STORE_BYTES:-209715200}" --disable-usage-stats
        "--labels=serve-core/proxy-host=$ip")

gcs_answers() { python -c "import socket,sys; socket.create_connection(('$head_ip', $gcs_port), 2)" 2>/dev/null; }

case "$role" in
head)
    export RAY_REDIS_ADDRESS=${RAY_REDIS_ADDRESS:-rediss://redis:6379}
    for f in "${RAY_REDIS_CA_CERT:-}" "${RAY_REDIS_CLIENT_CERT:-}" "${RAY_REDIS_CLIENT_KEY:-}"; do
        [ -z "$f" ] || readable "$f" "Redis' TLS"
    done
    (   # serve_core's controller and proxies, once Ray answers (idempotent; Ray restarts the
        # detached controller by itself after a head restart)
        for _ in $(seq 1 120); do
            if python -c "
import ray, serve_core
ray.init(address='$head_ip:$gcs_port', logging_level='ERROR')
serve_core.start(http_options={'host': '127.0.0.1', 'port': 8000})
" >/tmp/serve-core-start.log 2>&1; then echo "[node] serve_core started"; exit 0; fi
            sleep 2
        done
        echo "[node] serve_core did not start:"; tail -5 /tmp/serve-core-start.log
    ) &
    # Prometheus' file_sd targets (a Ray driver: it must run on a Ray node, and dies with this one)
    if [ -d /sd ]; then python /app/compose/targets_sidecar.py --state-dir /sd --head-ip "$head_ip" & fi
    exec ray start --head "--port=$gcs_port" --num-cpus=0 --include-dashboard=false "${common[@]}"
    ;;
worker)
    for i in $(seq 1 120); do
        gcs_answers && break
        [ "$i" = 1 ] && echo "[node] waiting for the head's GCS at $head_ip:$gcs_port"
        sleep 1
    done
    exec ray start "--address=$head_ip:$gcs_port" "--num-cpus=${SERVE_CORE_WORKER_CPUS:-2}" "${common[@]}"
    ;;
*)
    echo "usage: node.sh head|worker" >&2; exit 2 ;;
esac

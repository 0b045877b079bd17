#!/usr/bin/env bash
# Start or stop a Docker engine for the compose testbed on a machine without a service manager.
#
#   bash compose/dockerd.sh start   # starts dockerd unless one answers; prints "started PID" or "running"
#   bash compose/dockerd.sh stop    # stops the dockerd this script started (by its pid), nothing else
#
# dockerd sets the iptables FORWARD policy to DROP; the embedded cluster adds its own ACCEPT rule
# for its bridge (embedded_cluster/netns.py), so it keeps working beside it. `stop` puts
# back the policy that was in force before `start`.
set -euo pipefail
PIDFILE=${SERVE_CORE_DOCKERD_PIDFILE:-/var/run/serve-core-dockerd.pid}
LOG=${SERVE_CORE_DOCKERD_LOG:-/var/log/serve-core-dockerd.log}

answers() { timeout 10 docker info >/dev/null 2>&1; }

case "${1:-}" in
start)
    if answers; then echo "running"; exit 0; fi
    command -v dockerd >/dev/null || { echo "dockerd is missing: apt-get install docker.io docker-compose" >&2; exit 3; }
    [ "$(id -u)" = 0 ] || { echo "dockerd needs root" >&2; exit 3; }
    iptables -S FORWARD 2>/dev/null | awk '$1 == "-P" {print $3; exit}' >"$PIDFILE.policy" || true
    nohup dockerd --host=unix:///var/run/docker.sock >"$LOG" 2>&1 &
    echo $! >"$PIDFILE"
    for _ in $(seq 1 60); do
        if answers; then echo "started $(cat "$PIDFILE")"; exit 0; fi
        kill -0 "$(cat "$PIDFILE")" 2>/dev/null || break
        sleep 1
    done
    echo "dockerd did not come up; see $LOG:" >&2
    tail -20 "$LOG" >&2
    exit 3
    ;;
stop)
    [ -f "$PIDFILE" ] || { echo "no dockerd started by this script"; exit 0; }
    pid=$(cat "$PIDFILE")
    if [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = dockerd ]; then
        kill -TERM "$pid"
        for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
        echo "stopped dockerd $pid"
    fi
    policy=$(cat "$PIDFILE.policy" 2>/dev/null || true)
    if [ "$policy" = ACCEPT ]; then iptables -P FORWARD ACCEPT; echo "iptables FORWARD policy back to ACCEPT"; fi
    rm -f "$PIDFILE" "$PIDFILE.policy"
    ;;
*)
    echo "usage: $0 start|stop" >&2; exit 2 ;;
esac

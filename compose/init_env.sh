#!/usr/bin/env bash
# Write compose/.env with a fresh Ray token, Redis password and Grafana admin password, unless
# it exists. The compose file has no defaults for them: it refuses to start without.
set -euo pipefail
env_file="$(dirname "$0")/.env"
if [ -f "$env_file" ]; then echo "$env_file exists (kept)"; exit 0; fi
umask 077
secret() { python3 -c "import secrets; print(secrets.token_hex($1))"; }
{
    echo "RAY_AUTH_TOKEN=$(secret 32)"
    echo "REDIS_PASSWORD=$(secret 24)"
    echo "GRAFANA_ADMIN_PASSWORD=$(secret 12)"
} >"$env_file"
echo "wrote $env_file"

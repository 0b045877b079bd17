#!/usr/bin/env bash
# Write the compose testbed's secrets into compose/secrets/ (a directory only its owner can enter),
# unless it exists. The compose file has no defaults for them: it refuses to start without.
#
#   bash compose/init_env.sh [DIR]     # DIR: another directory (then SERVE_CORE_SECRETS_DIR=DIR)
#
#   ray_token                            Ray's auth token (RAY_AUTH_TOKEN_PATH in every Ray container)
#   redis_ca                             the CA of Redis' mutual TLS (its key is not kept)
#   redis_cert, redis_key                Redis' server certificate (CN and SAN "redis")
#   redis_client_cert, redis_client_key  the head's client certificate (its GCS stores in Redis)
#   grafana_admin_password               Grafana's admin password (GF_SECURITY_ADMIN_PASSWORD__FILE)
#
# Each file is mounted read-only at /run/secrets/NAME into the services that need it and read
# there by the program itself: no secret is on a command line or in a container's environment
# (`ps`, `docker inspect`). The files are world-readable inside the 0700 directory because the
# containers run as other users (serve 1000, redis 999) than the one who owns them on the host.
# Redis has no password: it accepts only TLS clients holding a certificate of this CA.
set -euo pipefail
dir=${1:-"$(cd "$(dirname "$0")" && pwd)/secrets"}
if [ -d "$dir" ]; then echo "$dir exists (kept; remove it for new secrets)"; exit 0; fi
command -v openssl >/dev/null || { echo "openssl is missing (apt-get install openssl)" >&2; exit 3; }
tmp=$(mktemp -d "${dir}.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
chmod 0700 "$tmp"
secret() { python3 -c "import secrets, sys; sys.stdout.write(secrets.token_hex($1))"; }
secret 32 >"$tmp/ray_token"
secret 12 >"$tmp/grafana_admin_password"
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
(
    cd "$tmp"
    openssl req -x509 "${ec[@]}" -days 3650 -subj "/CN=serve-core compose redis CA" \
        -keyout ca.key -out redis_ca 2>/dev/null
    openssl req "${ec[@]}" -subj "/CN=redis" -keyout redis_key -out redis.csr 2>/dev/null
    printf 'subjectAltName=DNS:redis\nextendedKeyUsage=serverAuth\n' >server.ext
    openssl x509 -req -in redis.csr -CA redis_ca -CAkey ca.key -CAcreateserial -CAserial ca.srl -days 3650 \
        -extfile server.ext -out redis_cert 2>/dev/null
    openssl req "${ec[@]}" -subj "/CN=serve-core head" -keyout redis_client_key -out client.csr 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' >client.ext
    openssl x509 -req -in client.csr -CA redis_ca -CAkey ca.key -CAserial ca.srl -days 3650 \
        -extfile client.ext -out redis_client_cert 2>/dev/null
    rm -f ca.key ca.srl ./*.csr ./*.ext   # nobody can sign another certificate
    chmod 0444 ./*
)
mv "$tmp" "$dir"
trap - EXIT
echo "wrote $dir"

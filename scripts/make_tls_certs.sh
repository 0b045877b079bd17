#!/usr/bin/env bash
# A private CA and one certificate signed by it, for serve_core's TLS (proxies and direct
# connections; see SECURITY.md). For tests, benchmarks and small clusters: in production use
# your own CA and one certificate per node.
#
#   scripts/make_tls_certs.sh DIR [ADDRESS...]
#
# writes DIR/ca.crt, DIR/node.crt, DIR/node.key (mode 600); the certificate names 127.0.0.1,
# localhost and every ADDRESS given, and serves for both server and client authentication.
set -euo pipefail
dir=${1:?usage: make_tls_certs.sh DIR [ADDRESS...]}
shift
mkdir -p "$dir"
umask 077
san="IP:127.0.0.1,DNS:localhost"
for a in "$@"; do
    if [[ $a =~ ^[0-9.]+$ || $a == *:* ]]; then san+=",IP:$a"; else san+=",DNS:$a"; fi
done
openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=serve-core test CA" \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=serve-core node" \
    -keyout "$dir/node.key" -out "$dir/node.csr" 2>/dev/null
printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$san" > "$dir/node.ext"
openssl x509 -req -in "$dir/node.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 365 -extfile "$dir/node.ext" -out "$dir/node.crt" 2>/dev/null
rm -f "$dir/node.csr" "$dir/node.ext" "$dir/ca.srl"
chmod 644 "$dir/ca.crt" "$dir/node.crt"
echo "$dir: ca.crt node.crt node.key"

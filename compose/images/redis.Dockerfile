# A stand-in for redis:7 built on the local Debian bookworm base (redis-server 7.0, built with TLS).
# As in the public image, the `redis` user is uid 999 and owns /data; the compose file runs the
# server as 999:999.
ARG BASE_IMAGE=serve-core-base:bookworm
FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive
RUN groupadd --system --gid 999 redis && useradd --system --uid 999 --gid 999 --home-dir /data redis \
 && apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends redis-server >/dev/null \
 && rm -rf /var/lib/apt/lists/* && mkdir -p /data && chown 999:999 /data
WORKDIR /data
USER 999:999
CMD ["redis-server"]

# A stand-in for prom/prometheus built on the local Debian bookworm base. The compose file runs it
# as the public image is run: /bin/prometheus (bookworm merges /bin into /usr/bin) as nobody
# (65534), which owns /prometheus.
ARG BASE_IMAGE=serve-core-base:bookworm
FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends prometheus >/dev/null \
 && rm -rf /var/lib/apt/lists/* && mkdir -p /prometheus && chown 65534:65534 /prometheus
WORKDIR /prometheus
USER 65534:65534
ENTRYPOINT ["/bin/prometheus"]

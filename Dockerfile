# The project image: serve_core, the testbed (loadgen, chaos) and their examples, on Python 3.11
# with ray[default]==2.60.0. One image serves every role of compose/docker-compose.yml: Ray head,
# Ray worker, the Prometheus target sidecar, Locust, and the chaos runner.
#
#   docker build -t serve-core:latest .                                    # from python:3.11-slim
#   docker build --network host -t serve-core:latest --build-arg BASE_IMAGE=serve-core-python:3.11 .
#
# (compose/build_local_images.sh builds serve-core-python:3.11 where no registry is reachable.)
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
ARG PIP_INDEX_URL=
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 PIP_INDEX_URL=${PIP_INDEX_URL} RAY_USAGE_STATS_ENABLED=0
# procps: pgrep/kill for the chaos target's faults. iproute2 (tc) and iptables are for the chaos
# target's short-lived network-fault helper (chaos/targets/compose.py), which runs this image as root
# with NET_ADMIN in a node's network namespace; the nodes themselves run as `serve` without it.
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends procps iproute2 iptables >/dev/null \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 1000 serve && useradd --uid 1000 --gid 1000 --create-home --shell /bin/bash serve
# Dependencies first (their layer stays cached while only the code changes): the library's, the
# testbed's and Ray Serve (the `compare` extra: experiments can run against it on compose too).
COPY pyproject.toml /app/pyproject.toml
RUN python -c "import tomllib; p = tomllib.load(open('/app/pyproject.toml', 'rb'))['project']; \
extra = p['optional-dependencies']; print('\n'.join(p['dependencies'] + extra['testbed'] + extra.get('compare', [])))" \
    > /tmp/requirements.txt \
 && pip install -q -r /tmp/requirements.txt "docker>=7.1" "setuptools>=68" \
 && python -c "import ray; assert ray.__version__ == '2.60.0', ray.__version__"
COPY . /app
WORKDIR /app
RUN pip install -q --no-deps --no-build-isolation -e /app && chmod +x /app/compose/node.sh
ENV PYTHONPATH=/app HOME=/home/serve
# Every role runs as `serve` (uid 1000): the code in /app is root's and read-only to it; Ray
# writes under /tmp/ray. Bind-mounted output directories must be writable by uid 1000.
USER 1000:1000
CMD ["serve-core", "--help"]

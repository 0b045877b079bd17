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
# procps: pgrep/kill for the chaos target's faults; iproute2 (tc) and iptables: network faults.
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends procps iproute2 iptables >/dev/null \
 && rm -rf /var/lib/apt/lists/*
# Dependencies first (their layer stays cached while only the code changes).
COPY pyproject.toml /app/pyproject.toml
RUN python -c "import tomllib; p = tomllib.load(open('/app/pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['testbed']))" > /tmp/requirements.txt \
 && pip install -q -r /tmp/requirements.txt "docker>=7.1" "setuptools>=68" \
 && python -c "import ray; assert ray.__version__ == '2.60.0', ray.__version__"
COPY . /app
WORKDIR /app
RUN pip install -q --no-deps --no-build-isolation -e /app && chmod +x /app/compose/node.sh
ENV PYTHONPATH=/app
CMD ["serve-core", "--help"]

# A stand-in for python:3.11-slim built on the local Debian bookworm base (Python 3.11.2):
# `python` and `pip` on PATH from a venv, as in the public image. It trusts the certificate
# authorities of the machine that builds it (host-ca-bundle.crt, copied in by
# compose/build_local_images.sh), so pip reaches the package index the way the host's pip does.
ARG BASE_IMAGE=serve-core-base:bookworm
FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 PYTHONUNBUFFERED=1
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends python3 python3-venv python3-pip ca-certificates >/dev/null \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/venv
COPY host-ca-bundle.crt /etc/ssl/certs/host-ca-bundle.crt
RUN [ -s /etc/ssl/certs/host-ca-bundle.crt ] || cp /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/host-ca-bundle.crt
ENV PATH=/opt/venv/bin:$PATH PIP_CERT=/etc/ssl/certs/host-ca-bundle.crt \
    SSL_CERT_FILE=/etc/ssl/certs/host-ca-bundle.crt REQUESTS_CA_BUNDLE=/etc/ssl/certs/host-ca-bundle.crt
CMD ["python3"]

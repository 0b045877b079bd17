"""SLO declarations as OpenSLO v1 documents (github.com/OpenSLO/OpenSLO, README "Specification").

An experiment's SLOs are the ones a team would keep watching on the service after the run;
OpenSLO is the vendor-neutral file SLO tools read. The queries come from the project's own
builders (``chaos.slo.queries``) for the backend's metric names, so an exported SLO measures
what a chaos run judges, and ``chaos.slo.alerts`` writes the matching Prometheus rules.

- availability: a ``ratioMetric`` of the request counter, good (2xx) over total, with
  ``counter: true`` (the SLO tool takes the increase over its window), on the SLO's route or,
  as the queries do, on every route but a backend's own health checks; ``target`` the objective.
- latency: a ``thresholdMetric``, the percentile over ``sample_window_s`` in ms (the window of
  the ``SLOLatencyHigh`` alert), ``op: lte`` the threshold as ``chaos.slo.evaluate`` judges it.
- promql: a ``thresholdMetric`` of its query over the same window with its comparison (``==``
  has no OpenSLO operator and is left out).
- recovery: left out, and said why: it is the time to recover from each injected fault,
  measured after a run; OpenSLO indicators are metrics a tool reads continuously.

Every SLO has ``budgetingMethod: Occurrences`` and a rolling ``timeWindow`` of the
experiment's length, rounded up to whole minutes (OpenSLO's shortest unit). A threshold
metric's ``target`` is the share of its samples that must meet the threshold: the experiment
wants all of them, which OpenSLO cannot write (a target is below 1), so ``threshold_target``.

Pure: returns documents and the reasons for what was left out; writing is the caller's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from chaos.slo.queries import Backend, SLOError, backend_named, check_slos, latency_query, promql_query, quote, selector
from chaos.slo.spec import SLO, Availability, Latency, PromQL, Recovery

API_VERSION = "openslo/v1"
DATASOURCE_NAME = "prometheus"
DEFAULT_PROMETHEUS_URL = "http://prometheus:9090"  # the compose service, as dashboards/provision.py
SAMPLE_WINDOW_S = 60.0  # chaos.slo.alerts.alert_rules' default latency_window_s
THRESHOLD_TARGET = 0.99
MAX_NAME = 63  # RFC 1123 label, as OpenSLO names must be
MAX_DESCRIPTION = 1050
OPS = {"<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}  # PromQL SLO op -> OpenSLO objective op
_NOT_LABEL = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class Export:
    """The OpenSLO documents, and one sentence per SLO left out (which and why)."""

    documents: list[dict[str, Any]]
    left_out: list[str] = field(default_factory=list)


def dns_label(text: str, fallback: str = "slo") -> str:
    """``text`` as an RFC 1123 label: lowercase letters, digits and ``-``, alphanumeric at both
    ends, at most 63 characters (``My_SLO.p99`` -> ``my-slo-p99``)."""
    label = _NOT_LABEL.sub("-", text.lower()).strip("-")[:MAX_NAME].strip("-")
    return label or fallback


def unique_labels(texts: Sequence[str]) -> list[str]:
    """``dns_label`` of each, made distinct with ``-2``, ``-3``... where two come out the same."""
    out: list[str] = []
    for text in texts:
        base, n, label = dns_label(text), 1, dns_label(text)
        while label in out:
            n += 1
            suffix = f"-{n}"
            label = base[: MAX_NAME - len(suffix)].rstrip("-") + suffix
        out.append(label)
    return out


def rolling_window(window_s: float) -> str:
    """An OpenSLO duration shorthand covering ``window_s``: whole minutes, rounded up."""
    if not window_s > 0 or math.isinf(window_s):
        raise SLOError(f"the time window must be a positive number of seconds, got {window_s}")
    return f"{math.ceil(window_s / 60)}m"


def _metric(query: str) -> dict[str, Any]:
    return {"metricSource": {"metricSourceRef": DATASOURCE_NAME, "type": "Prometheus", "spec": {"query": query}}}


def _routes(b: Backend, route: str | None) -> list[str]:
    """The route matchers of chaos.slo.queries: the SLO's route, or every route but the health checks."""
    if route is not None:
        return [f"route={quote(route)}"]
    return [b.all_routes_matcher] if b.all_routes_matcher else []


def good_requests_query(b: Backend, route: str | None = None) -> str:
    """Requests answered 2xx so far (a counter), as ``availability_query`` counts them."""
    good = f'{b.status_label}=~"2.."'
    return f"sum({selector(b.requests, [*_routes(b, route), good])})"


def total_requests_query(b: Backend, route: str | None = None) -> str:
    """Requests answered so far (a counter), as ``requests_query`` counts them."""
    return f"sum({selector(b.requests, _routes(b, route))})"


def _on(route: str | None) -> str:
    return f" on route {route}" if route is not None else ""


def _indicator(slo: SLO, b: Backend, sample_window_s: float) -> tuple[dict[str, Any], dict[str, Any]] | str:
    """(indicator spec, objective) for one SLO, or why it has no OpenSLO form."""
    if isinstance(slo, Availability):
        ratio = {"counter": True, "good": _metric(good_requests_query(b, slo.route)),
                 "total": _metric(total_requests_query(b, slo.route))}
        return {"ratioMetric": ratio}, {"displayName": f"{slo.name} >= {slo.objective:g}", "target": slo.objective}
    if isinstance(slo, Latency):
        query = latency_query(b, slo.percentile, sample_window_s, slo.route)
        return {"thresholdMetric": _metric(query)}, {
            "displayName": f"p{slo.percentile:g} <= {slo.threshold_ms:g} ms", "op": "lte", "value": slo.threshold_ms}
    if isinstance(slo, PromQL):
        if slo.op not in OPS:
            return f"its comparison {slo.op!r} has no OpenSLO operator (lt, lte, gt, gte)"
        return {"thresholdMetric": _metric(promql_query(slo, sample_window_s))}, {
            "displayName": f"{slo.query} {slo.op} {slo.threshold:g}", "op": OPS[slo.op], "value": slo.threshold}
    if isinstance(slo, Recovery):
        return ("recovery time is measured from each injected fault after a run; OpenSLO indicators are metrics "
                "read continuously, with no faults to measure from")
    return f"kind {slo.kind!r} has no OpenSLO form here"  # pragma: no cover - every kind is handled above


def _description(slo: SLO, b: Backend) -> str:
    if isinstance(slo, Availability):
        what = f"Share of requests answered with a 2xx status{_on(slo.route)}"
    elif isinstance(slo, Latency):
        what = f"p{slo.percentile:g} latency{_on(slo.route)} at most {slo.threshold_ms:g} ms"
    else:
        what = f"{slo.name}: {getattr(slo, 'query', '')}"
    return f"{what}, on {b.name}'s metrics."[:MAX_DESCRIPTION]


def openslo_documents(slos: Sequence[SLO], backend: str | Backend, *, service: str, window_s: float,
                      description: str = "", prometheus_url: str = DEFAULT_PROMETHEUS_URL,
                      sample_window_s: float = SAMPLE_WINDOW_S, threshold_target: float = THRESHOLD_TARGET,
                      annotations: dict[str, str] | None = None) -> Export:
    """A ``DataSource``, a ``Service`` named after ``service`` and an ``SLO`` per declaration that
    has an OpenSLO form; ``window_s`` is the rolling window (the experiment's length)."""
    b = backend_named(backend)
    check_slos(slos, b)
    if not 0 <= threshold_target < 1:
        raise SLOError(f"threshold_target must be in [0, 1) as OpenSLO's target is, got {threshold_target}")
    window = rolling_window(window_s)
    service_name = dns_label(service, fallback="service")
    notes = {**(annotations or {}), "backend": b.name, "window-s": f"{window_s:g}"}
    docs: list[dict[str, Any]] = [
        {"apiVersion": API_VERSION, "kind": "DataSource", "metadata": {"name": DATASOURCE_NAME, "displayName": "Prometheus"},
         "spec": {"description": f"The Prometheus that scrapes {b.name}'s metrics.", "type": "Prometheus",
                  "connectionDetails": {"url": prometheus_url}}},
        {"apiVersion": API_VERSION, "kind": "Service", "metadata": {"name": service_name, "displayName": service},
         "spec": {"description": (description.strip() or f"SLOs of {service}.")[:MAX_DESCRIPTION]}},
    ]
    left_out: list[str] = []
    names = unique_labels([f"{service_name}-{s.name}" for s in slos])
    for slo, name in zip(slos, names, strict=True):
        found = _indicator(slo, b, sample_window_s)
        if isinstance(found, str):
            left_out.append(f"left out SLO {slo.name!r} ({slo.kind}): {found}")
            continue
        indicator, objective = found
        objective.setdefault("target", threshold_target)
        docs.append({
            "apiVersion": API_VERSION, "kind": "SLO",
            "metadata": {"name": name, "displayName": slo.name, "annotations": dict(notes)},
            "spec": {
                "description": _description(slo, b),
                "service": service_name,
                "indicator": {"metadata": {"name": f"{name[: MAX_NAME - 4].rstrip('-')}-sli"}, "spec": indicator},
                "timeWindow": [{"duration": window, "isRolling": True}],
                "budgetingMethod": "Occurrences",
                "objectives": [objective],
            },
        })
    return Export(docs, left_out)


def to_yaml(documents: Sequence[dict[str, Any]], header: str = "") -> str:
    """The documents as one multi-document YAML file, after ``header`` (comment lines)."""
    comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return comment + yaml.safe_dump_all(list(documents), sort_keys=False, width=1000, explicit_start=True)

"""Properties of the user-facing schemas, with hypothesis: serve_core's config (deployment
options, autoscaling, HTTP options, the serve config YAML) and the chaos experiment and SLO
declarations.

Valid documents, generated within every bound and cross-field rule, load and round-trip.
Invalid ones are generated from the models themselves: every numeric field with a bound, at any
depth, gets a value past it, a value of the wrong type, or a sibling key that does not exist; the
error must name that field by its path (``serve_core.config.parse`` raises ConfigError with
``field``; ``chaos.spec.loading.parse_experiment`` raises ExperimentError with ``path``).
New fields are covered as they are added.
"""

import math
import types
import typing
from typing import Annotated, Any, Union

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from chaos.errors import ExperimentError
from chaos.slo.queries import SLOError, parse_slos
from chaos.spec.experiment import MAX_WORKERS, Experiment
from chaos.spec.loading import parse_experiment
from serve_core import config
from serve_core.config import AutoscalingConfig, DeploymentOptions, HTTPOptions, parse
from serve_core.config_file import ServeConfig
from serve_core.errors import ConfigError

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- walking a model: its bounded numeric fields, at any depth ---------------------------------------

def _unwrap(tp: Any) -> Any:
    while typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _members(tp: Any) -> tuple[Any, ...]:
    tp = _unwrap(tp)
    if typing.get_origin(tp) in (Union, types.UnionType):
        return tuple(_unwrap(m) for m in typing.get_args(tp) if m is not type(None))
    return (tp,)


def _submodel(tp: Any, node: Any) -> tuple[type[BaseModel] | None, bool]:
    """The model a field holds (the member a discriminated union picks by ``node``'s kind), and
    whether it is a list of them."""
    is_list = False
    members = _members(tp)
    if len(members) == 1 and typing.get_origin(members[0]) is list:
        is_list, members = True, _members(typing.get_args(members[0])[0])
        node = node[0] if isinstance(node, list) and node else None
    models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
    if len(models) > 1:  # discriminated by kind
        kind = node.get("kind") if isinstance(node, dict) else None
        models = [m for m in models if m.model_fields["kind"].default == kind] or models[:1]
    return (models[0] if models else None), is_list


def _bounds(field: Any) -> dict[str, float]:
    out = {}
    for meta in field.metadata:
        for name in ("ge", "gt", "le", "lt"):
            value = getattr(meta, name, None)
            if value is not None:
                out[name] = value
    return out


def _is_int(field: Any) -> bool:
    return any(m is int for m in _members(field.annotation))


def _children(model: type[BaseModel], doc: dict, path: tuple):
    """(path, model, document) of each sub-document of ``doc`` (every item of a list)."""
    for name, field in model.model_fields.items():
        node = doc.get(name)
        if isinstance(node, dict):
            sub, _ = _submodel(field.annotation, node)
            if sub is not None:
                yield path + (name,), sub, node
        elif isinstance(node, list):
            for i, item in enumerate(node):
                sub, is_list = _submodel(field.annotation, [item])
                if sub is not None and is_list and isinstance(item, dict):
                    yield path + (name, i), sub, item


def leaves(model: type[BaseModel], doc: dict, path: tuple = ()):
    """(path, field, model) of every bounded numeric field of ``model`` and of the sub-models
    present in ``doc``."""
    for name, field in model.model_fields.items():
        if _bounds(field) and any(m in (int, float) for m in _members(field.annotation)):
            yield path + (name,), field, model
    for sub_path, sub, node in _children(model, doc, path):
        yield from leaves(sub, node, sub_path)


def mappings(model: type[BaseModel], doc: dict, path: tuple = ()):
    """(path, model) of ``doc`` and every sub-document in it."""
    yield path, model
    for sub_path, sub, node in _children(model, doc, path):
        yield from mappings(sub, node, sub_path)


def put(doc: Any, path: tuple, value: Any) -> Any:
    """A copy of ``doc`` with ``value`` at ``path`` (dict keys and list indices)."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(head, int):
        items = list(doc)
        items[head] = put(items[head], rest, value)
        return items
    out = dict(doc)
    out[head] = put(doc.get(head, {}), rest, value)
    return out


def past_bounds(field: Any) -> st.SearchStrategy:
    """Values that break one of ``field``'s bounds (NaN breaks them all)."""
    b, whole = _bounds(field), _is_int(field)
    options = []
    if "ge" in b:
        options.append(st.integers(math.ceil(b["ge"]) - 10**9, math.ceil(b["ge"]) - 1) if whole else
                       st.floats(max_value=b["ge"], exclude_max=True, allow_nan=False))
    if "gt" in b:
        options.append(st.integers(math.floor(b["gt"]) - 10**9, math.floor(b["gt"])) if whole else
                       st.floats(max_value=b["gt"], allow_nan=False))
    if "le" in b:
        options.append(st.integers(math.floor(b["le"]) + 1, math.floor(b["le"]) + 10**12) if whole else
                       st.floats(min_value=b["le"], exclude_min=True, allow_nan=False))
    if "lt" in b:
        options.append(st.integers(math.ceil(b["lt"]), math.ceil(b["lt"]) + 10**12) if whole else
                       st.floats(min_value=b["lt"], allow_nan=False))
    if not whole:
        options.append(st.just(math.nan))
    return st.one_of(options)


wrong_types = st.sampled_from(["many", [1, 2], {"a": 1}])


def _serve_path(path: tuple) -> str:
    return ".".join(str(p) for p in path)


def _experiment_path(path: tuple) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else ("." if out else "") + p
    return out


# -- serve_core.config: valid documents ----------------------------------------------------------------

finite = {"allow_nan": False, "allow_infinity": False}


@st.composite
def autoscaling_docs(draw):
    lo = draw(st.integers(0, 20))
    hi = draw(st.integers(max(1, lo), 100))
    doc = {"min_replicas": lo, "max_replicas": hi}
    optional = {
        "initial_replicas": st.integers(lo, hi),
        "target_ongoing_requests": st.floats(0.01, 1e4, **finite),
        "upscale_delay_s": st.floats(0, 1e4, **finite), "downscale_delay_s": st.floats(0, 1e4, **finite),
        "downscale_to_zero_delay_s": st.none() | st.floats(0, 1e4, **finite),
        "upscaling_factor": st.none() | st.floats(0.01, 100, **finite),
        "downscaling_factor": st.none() | st.floats(0.01, 100, **finite),
        "look_back_period_s": st.floats(0.01, 1e4, **finite), "metrics_interval_s": st.floats(0.01, 1e3, **finite),
        "panic_threshold": st.floats(1.01, 100, **finite), "panic_window_s": st.floats(0, 1e4, **finite),
    }
    for key in draw(st.sets(st.sampled_from(sorted(optional)))):
        doc[key] = draw(optional[key])
    return doc


@st.composite
def deployment_docs(draw):
    doc: dict[str, Any] = {}
    if draw(st.booleans()):
        doc["autoscaling_config"] = draw(autoscaling_docs())
        if draw(st.booleans()):
            doc["num_replicas"] = "auto"
    else:
        doc["num_replicas"] = draw(st.none() | st.integers(0, 100) | st.just("auto"))
    optional = {
        "name": st.text(min_size=1, max_size=20),
        "max_ongoing_requests": st.integers(1, 10**4), "max_queued_requests": st.integers(-1, 10**4),
        "user_config": st.none() | st.dictionaries(st.text(max_size=5), st.integers()),
        "ray_actor_options": st.fixed_dictionaries({}, optional={
            "num_cpus": st.floats(0, 64, **finite), "num_gpus": st.floats(0, 8, **finite),
            "memory": st.integers(0, 2**40), "resources": st.dictionaries(st.text(min_size=1, max_size=5),
                                                                           st.floats(0, 10, **finite))}),
        "health_check_period_s": st.floats(0.01, 1e3, **finite), "health_check_timeout_s": st.floats(0.01, 1e3, **finite),
        "graceful_shutdown_wait_loop_s": st.floats(0.01, 100, **finite),
        "graceful_shutdown_timeout_s": st.floats(0, 1e3, **finite),
        "idempotent": st.booleans(), "max_surge_fraction": st.floats(0.001, 1, **finite),
    }
    for key in draw(st.sets(st.sampled_from(sorted(optional)))):
        doc[key] = draw(optional[key])
    return doc


segments = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=8)
route_prefixes = st.just("/") | st.lists(segments, min_size=1, max_size=3).map(lambda s: "/" + "/".join(s))


@st.composite
def serve_config_docs(draw):
    n = draw(st.integers(1, 4))
    names = draw(st.lists(segments, min_size=n, max_size=n, unique=True))
    prefixes = draw(st.lists(route_prefixes, min_size=n, max_size=n, unique=True))
    apps = []
    for name, prefix in zip(names, prefixes, strict=True):
        app = {"name": name, "route_prefix": draw(st.just(prefix) | st.none()), "import_path": f"pkg.{name}:app"}
        if draw(st.booleans()):
            app["deployments"] = [{"name": "D", "max_ongoing_requests": draw(st.integers(1, 100)),
                                   "autoscaling_config": draw(st.none() | autoscaling_docs())}]
        apps.append(app)
    body = draw(st.integers(1, 10**9))
    timeout = draw(st.floats(0.1, 1e3, **finite))
    http = {"port": draw(st.integers(0, 65535)), "max_body_bytes": body, "body_read_timeout_s": timeout,
            "header_timeout_s": draw(st.floats(0.01, timeout, **finite))}
    return {"http_options": http, "applications": apps}


@SETTINGS
@given(autoscaling_docs())
def test_valid_autoscaling_configs_load_and_round_trip(doc):
    c = parse(AutoscalingConfig, doc)
    assert c.min_replicas <= c.max_replicas
    for key, value in doc.items():
        assert getattr(c, key) == value
    assert parse(AutoscalingConfig, c.model_dump()) == c


@SETTINGS
@given(deployment_docs())
def test_valid_deployment_options_load(doc):
    o = parse(DeploymentOptions, doc, "Model")
    target = o.target_replicas()
    if o.autoscaling_config is not None:
        ac = o.autoscaling_config
        assert ac.min_replicas <= target <= ac.max_replicas
    assert o.actor_options()["num_cpus"] >= 0
    assert parse(DeploymentOptions, o.model_dump()) == o


@SETTINGS
@given(serve_config_docs())
def test_valid_serve_configs_load_and_round_trip(doc):
    c = parse(ServeConfig, doc)
    assert [a.name for a in c.applications] == [a["name"] for a in doc["applications"]]
    assert parse(ServeConfig, c.model_dump(mode="json")) == c


# -- serve_core.config: invalid documents name the field --------------------------------------------------

def _serve_roots():
    """Each model with a document that holds every sub-model once, and the where= prefix."""
    options = {"autoscaling_config": {}, "backpressure_config": {}}
    app = {"import_path": "m:app", "deployments": [{"name": "D", **options}]}
    roots = [
        (AutoscalingConfig, {}, ""),
        (DeploymentOptions, dict(options), "Model"),
        (HTTPOptions, {"data_path": {}}, "http_options"),
        (ServeConfig, {"http_options": {"data_path": {}}, "applications": [app]}, ""),
    ]
    return [(m, {k: v for k, v in doc.items() if k in m.model_fields}, where) for m, doc, where in roots]


def _prune(model, doc):
    """Drop sub-documents the model does not (yet) have."""
    out = {}
    for k, v in doc.items():
        if k not in model.model_fields:
            continue
        sub, is_list = _submodel(model.model_fields[k].annotation, v)
        if sub is not None and is_list:
            v = [_prune(sub, item) for item in v]
        elif sub is not None and isinstance(v, dict):
            v = _prune(sub, v)
        out[k] = v
    return out


SERVE_ROOTS = [(m, _prune(m, doc), where) for m, doc, where in _serve_roots()]
SERVE_LEAVES = [(m, doc, where, path, field) for m, doc, where in SERVE_ROOTS for path, field, _ in leaves(m, doc)]
SERVE_MAPPINGS = [(m, doc, where, path, sub) for m, doc, where in SERVE_ROOTS for path, sub in mappings(m, doc)]


def test_the_walk_finds_the_nested_fields():
    paths = {(m.__name__, _serve_path(p)) for m, _, _, p, _ in SERVE_LEAVES}
    assert {("AutoscalingConfig", "min_replicas"), ("DeploymentOptions", "autoscaling_config.max_replicas"),
            ("HTTPOptions", "port"), ("ServeConfig", "applications.0.deployments.0.max_ongoing_requests"),
            ("ServeConfig", "applications.0.deployments.0.autoscaling_config.target_ongoing_requests")} <= paths


def _expect_field(where, path):
    return ".".join(p for p in (where, _serve_path(path)) if p)


@SETTINGS
@given(st.data())
def test_a_value_past_a_bound_names_its_field(data):
    model, doc, where, path, field = data.draw(st.sampled_from(SERVE_LEAVES))
    bad = data.draw(past_bounds(field))
    with pytest.raises(ConfigError) as e:
        parse(model, put(doc, path, bad), where)
    assert e.value.field == _expect_field(where, path), str(e.value)
    assert e.value.value == bad or (isinstance(bad, float) and math.isnan(bad))


@SETTINGS
@given(st.data())
def test_a_value_of_the_wrong_type_names_its_field(data):
    model, doc, where, path, _ = data.draw(st.sampled_from(SERVE_LEAVES))
    with pytest.raises(ConfigError) as e:
        parse(model, put(doc, path, data.draw(wrong_types)), where)
    expected = _expect_field(where, path)
    # A field typed as a union (int | 'auto') adds the member to the path: num_replicas.int
    assert e.value.field == expected or e.value.field.startswith(expected + "."), str(e.value)


@SETTINGS
@given(st.data(), st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12))
def test_an_unknown_key_is_named_at_its_place(data, key):
    model, doc, where, path, sub = data.draw(st.sampled_from(SERVE_MAPPINGS))
    if key in sub.model_fields:
        return
    with pytest.raises(ConfigError) as e:
        parse(model, put(doc, path + (key,), 1), where)
    assert e.value.field == _expect_field(where, path + (key,))


@SETTINGS
@given(autoscaling_docs(), st.data())
def test_crossed_bounds_name_both_fields(doc, data):
    lo = data.draw(st.integers(1, 50))
    bad = {**doc, "min_replicas": lo, "max_replicas": data.draw(st.integers(1, lo - 1)) if lo > 1 else 0}
    bad.pop("initial_replicas", None)
    with pytest.raises(ConfigError) as e:
        parse(DeploymentOptions, {"autoscaling_config": bad}, "Model")
    assert e.value.field.startswith("Model.autoscaling_config")
    assert "min_replicas" in str(e.value) or "max_replicas" in e.value.field


@SETTINGS
@given(serve_config_docs(), st.data())
def test_a_bad_route_prefix_names_its_application(doc, data):
    i = data.draw(st.integers(0, len(doc["applications"]) - 1))
    bad = data.draw(segments | segments.map(lambda s: f"/{s}/") | segments.map(lambda s: f"/{{{s}}}"))
    with pytest.raises(ConfigError) as e:
        parse(ServeConfig, put(doc, ("applications", i, "route_prefix"), bad))
    assert e.value.field == f"applications.{i}.route_prefix" and e.value.value == bad


@SETTINGS
@given(serve_config_docs(), st.data())
def test_a_shared_name_or_prefix_is_named(doc, data):
    apps = doc["applications"]
    if len(apps) < 2:
        return
    key = data.draw(st.sampled_from(["name", "route_prefix"]))
    copy = put(doc, ("applications", 1, key), apps[0][key] or "/")
    if key == "route_prefix":
        copy = put(copy, ("applications", 0, key), apps[0][key] or "/")
    with pytest.raises(ConfigError) as e:
        parse(ServeConfig, copy)
    assert f"share {key}" in str(e.value)


def test_the_schemas_have_descriptions():
    """User-facing fields say what they are (the house style); the YAML override entry is exempt."""
    for model in (AutoscalingConfig, DeploymentOptions, HTTPOptions, getattr(config, "BackpressureConfig", HTTPOptions)):
        missing = [n for n, f in model.model_fields.items() if not f.description]
        assert not missing, f"{model.__name__}: {missing}"


# -- chaos: experiments and SLOs ------------------------------------------------------------------------

slo_kinds = {
    "availability": st.fixed_dictionaries({"kind": st.just("availability"), "objective": st.floats(0.5, 0.99999)}),
    "latency": st.fixed_dictionaries({"kind": st.just("latency"), "percentile": st.floats(1, 99.99),
                                      "threshold_ms": st.floats(0.1, 1e5, **finite)}),
    "recovery": st.fixed_dictionaries({"kind": st.just("recovery"), "max_s": st.floats(0.1, 600, **finite)},
                                      optional={"healthy_error_ratio": st.floats(0, 0.5, **finite),
                                                "window_s": st.floats(1, 60, **finite)}),
    "promql": st.fixed_dictionaries({"kind": st.just("promql"), "name": st.just("q"), "query": st.just("up{window}"),
                                     "op": st.sampled_from(["<", "<=", ">", ">=", "=="]),
                                     "threshold": st.floats(-1e6, 1e6, **finite)}),
}


@st.composite
def slo_lists(draw):
    kinds = draw(st.lists(st.sampled_from(sorted(slo_kinds)), min_size=1, max_size=4, unique=True))
    return [draw(slo_kinds[k]) for k in kinds]


@st.composite
def experiments(draw):
    before = draw(st.floats(1, 60, **finite))
    during = draw(st.floats(10, 120, **finite))
    after = draw(st.floats(0, 60, **finite))
    run = before + during + after
    method = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["kill-replica", "kill-controller", "partition", "netem", "every"]))
        at = draw(st.floats(before, before + during / 2, **finite))
        if kind == "kill-replica":
            method.append({"action": "kill-replica", "target": {"node": "any"}, "schedule": {"at_s": at}})
        elif kind == "kill-controller":
            method.append({"action": "kill-controller", "schedule": {"at_s": at}})
        elif kind == "partition":
            method.append({"action": "partition", "target": {"node": "w1"}, "schedule": {"at_s": at},
                           "duration_s": draw(st.floats(0.1, during / 2 - 0.01, **finite)),
                           "args": {"mode": draw(st.sampled_from(["cut", "freeze"]))}})
        elif kind == "netem":
            method.append({"action": "netem", "target": "w2", "schedule": {"at_s": at},
                           "duration_s": draw(st.floats(0.1, during / 2 - 0.01, **finite)),
                           "args": {"delay_ms": draw(st.floats(0.1, 500, **finite)),
                                    "loss_pct": draw(st.floats(0, 100, **finite))}})
        else:
            method.append({"action": "kill-replica", "schedule": {"every_s": during / draw(st.integers(2, 6))}})
    return {
        "name": draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,15}", fullmatch=True)),
        "seed": draw(st.integers(0, 2**63 - 1)),
        "backend": draw(st.sampled_from(["serve_core", "ray_serve"])),
        "target": {"kind": "embedded", "workers": draw(st.integers(2, 4))},
        "application": {"import_path": "tests.e2e.fault_app:app", "route": "/" + draw(segments)},
        "load": {"profile": {"kind": "constant", "rate": draw(st.floats(0.1, 500, **finite)),
                             "duration_s": run + draw(st.floats(0, 30, **finite))},
                 "workers": draw(st.integers(1, 4)), "timeout_s": draw(st.floats(0.1, 60, **finite))},
        "steady_state": {"before_s": before, "during_s": during, "after_s": after, "slos": draw(slo_lists())},
        "method": method,
        "rollbacks": [{"action": "heal", "target": {"node": "all"}}],
        "abort": [{"kind": "burn_rate", "above": draw(st.floats(0.1, 100, **finite)), "objective": 0.99},
                  {"kind": "client_failures", "above": draw(st.integers(0, 1000))}],
    }


@settings(SETTINGS, max_examples=40)  # each example validates a whole experiment twice
@given(experiments())
def test_valid_experiments_load(doc):
    exp = parse_experiment(doc)
    s = doc["steady_state"]
    assert exp.run_s == pytest.approx(s["before_s"] + s["during_s"] + s["after_s"])
    assert len(exp.method) == len(doc["method"]) and len(exp.steady_state.slos) == len(s["slos"])
    again = parse_experiment(exp.model_dump(mode="json"))
    assert again == exp


# One document holding every kind of sub-document once (each SLO kind, abort kind, a fault with
# args and a random schedule), for the walk over bounded fields.
FULL_EXPERIMENT = {
    "name": "t", "seed": 1, "target": {"kind": "embedded", "workers": 2},
    "application": {"import_path": "tests.e2e.fault_app:app"},
    "load": {"profile": {"kind": "constant", "rate": 100, "duration_s": 60}, "metrics_port": 9100},
    "steady_state": {"before_s": 10, "during_s": 40, "after_s": 10, "slos": [
        {"kind": "availability", "objective": 0.999}, {"kind": "latency", "percentile": 99, "threshold_ms": 100},
        {"kind": "recovery", "max_s": 10}]},
    "method": [{"action": "netem", "target": "w1", "duration_s": 2, "args": {"delay_ms": 10, "loss_pct": 1},
                "schedule": {"random": {"count": 2, "min_gap_s": 1}}}],
    "abort": [{"kind": "burn_rate", "above": 14.4}, {"kind": "client_failures", "above": 10}],
}
EXPERIMENT_LEAVES = list(leaves(Experiment, FULL_EXPERIMENT))
EXPERIMENT_MAPPINGS = list(mappings(Experiment, FULL_EXPERIMENT))


def test_the_full_experiment_is_valid_and_the_walk_reaches_it():
    parse_experiment(FULL_EXPERIMENT)
    paths = {_experiment_path(p) for p, _, _ in EXPERIMENT_LEAVES}
    assert {"seed", "load.profile.rate", "steady_state.slos[0].objective", "steady_state.slos[1].threshold_ms",
            "method[0].args.loss_pct", "method[0].schedule.random.count", "abort[0].above", "target.workers"} <= paths


@SETTINGS
@given(st.data())
def test_an_experiment_value_past_a_bound_names_its_path(data):
    path, field, _ = data.draw(st.sampled_from(EXPERIMENT_LEAVES))
    bad = data.draw(past_bounds(field))
    with pytest.raises(ExperimentError) as e:
        parse_experiment(put(FULL_EXPERIMENT, path, bad))
    assert e.value.path == _experiment_path(path), str(e.value)


@SETTINGS
@given(st.data())
def test_huge_numbers_are_accepted_or_named_never_exhaust_memory(data):
    """A count the validator materialises (target.workers: the node names w1..wN) is bounded:
    before the bound, workers: 1e30 exhausted memory inside parse_experiment."""
    path, field, _ = data.draw(st.sampled_from(EXPERIMENT_LEAVES))
    huge = data.draw(st.sampled_from([10**30, 2**63]) if _is_int(field) else st.sampled_from([1e300, math.inf]))
    try:
        exp = parse_experiment(put(FULL_EXPERIMENT, path, huge))
    except ExperimentError as e:
        assert e.path  # refused, by name
        return
    assert len(exp.node_names()) <= MAX_WORKERS + 1


@SETTINGS
@given(st.data(), st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12))
def test_an_unknown_experiment_key_is_named_at_its_place(data, key):
    path, model = data.draw(st.sampled_from(EXPERIMENT_MAPPINGS))
    if key in model.model_fields:
        return
    with pytest.raises(ExperimentError) as e:
        parse_experiment(put(FULL_EXPERIMENT, path + (key,), 1))
    assert _experiment_path(path + (key,)) in {p.path for p in e.value.problems}, str(e.value)


@SETTINGS
@given(slo_lists(), st.data())
def test_slo_lists_load_and_a_bad_number_names_its_place(slos, data):
    assert [s.kind for s in parse_slos(slos)] == [s["kind"] for s in slos]
    i = data.draw(st.integers(0, len(slos) - 1))
    bad = {"availability": ("objective", 1.5), "latency": ("percentile", 100), "recovery": ("max_s", 0),
           "promql": ("op", "!=")}[slos[i]["kind"]]
    broken = put(slos, (i, bad[0]), bad[1])
    with pytest.raises(SLOError) as e:
        parse_slos(broken)
    assert f"slos[{i}]" in str(e.value) and bad[0] in str(e.value)

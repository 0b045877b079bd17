"""Ray Serve's public API next to serve_core's, and the decisions about every difference.

What counts as public in the installed Ray Serve:

* the submodules of ``ray.serve`` (every one not starting with ``_``): each is either
  mapped to a serve_core module of the same role or decided about in ``decisions.yaml``;
* in a mapped module, the names in its ``__all__`` and the classes and functions it
  defines that Ray marks ``@PublicAPI`` or ``@DeveloperAPI`` (re-exports count where
  they are defined: ``ray.serve.config.AutoscalingConfig``, not ``ray.serve.schema``'s);
* of a function: its parameters (names, whether they can be passed by position and at
  which index, and simple defaults); Ray's ``_private`` parameters are left out;
* of a class: its constructor's parameters (a pydantic model's or dataclass's fields;
  not for the classes listed under ``made_by_serve``, whose instances the library makes
  and users only receive: handles, responses, deployments) and its public methods and
  properties (those it does not inherit from pydantic, enum
  or ``object``), each method compared as a function. Exceptions are compared by name.

``differences()`` lists every way serve_core's surface departs from that, each with a
key; ``check()`` pairs them with ``decisions.yaml``: an undecided difference, or a
decision about something that is no longer a difference, is an error.
"""

from __future__ import annotations

import enum
import importlib
import inspect
import pathlib
import pkgutil
from dataclasses import dataclass
from typing import Any

import yaml

HERE = pathlib.Path(__file__).parent
DECISIONS = HERE / "decisions.yaml"

# Ray Serve module -> serve_core module with the same public names.
MODULE_MAP = {
    "ray.serve": "serve_core",
    "ray.serve.handle": "serve_core.handle",
    "ray.serve.schema": "serve_core.schema",
    "ray.serve.config": "serve_core.config",
    "ray.serve.exceptions": "serve_core.exceptions",
    "ray.serve.context": "serve_core.context",
    "ray.serve.batching": "serve_core.batching",
    "ray.serve.multiplex": "serve_core.multiplex",
    "ray.serve.metrics": "serve_core.metrics",
}
SHORT = {"ray.serve": "serve"} | {m: m.removeprefix("ray.serve.") for m in MODULE_MAP if m != "ray.serve"}
SIMPLE = (int, float, str, bool, type(None))


@dataclass(frozen=True)
class Difference:
    key: str  # e.g. "serve.start(grpc_options)", "handle.DeploymentHandle.broadcast", "config.gRPCOptions"
    name: str  # the public name it belongs to, e.g. "serve.start"
    kind: str  # missing | param-missing | param-absorbed | param-position | param-default | member-missing
    detail: str


def ray_submodules() -> list[str]:
    import ray.serve

    return sorted(f"ray.serve.{m.name}" for m in pkgutil.iter_modules(ray.serve.__path__) if not m.name.startswith("_"))


def _annotated(obj: Any) -> bool:
    kind = getattr(obj, "_annotated_type", None)
    return (
        (inspect.isclass(obj) or inspect.isfunction(obj))
        and getattr(obj, "_annotated", None) == getattr(obj, "__name__", None)
        and getattr(kind, "value", None) in ("PublicAPI", "DeveloperAPI")
    )


def public_names(module_name: str) -> list[str]:
    mod = importlib.import_module(module_name)
    names = {n for n in getattr(mod, "__all__", ()) if not n.startswith("_")}
    for n, obj in vars(mod).items():
        if not n.startswith("_") and _annotated(obj) and obj.__module__ == module_name:
            names.add(n)
    return sorted(names)


def _params(fn: Any) -> list[inspect.Parameter] | None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    return [p for p in sig.parameters.values() if p.name != "self"]


def _positional(params: list[inspect.Parameter]) -> list[str]:
    return [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def compare_callable(key: str, name: str, theirs: Any, ours: Any) -> list[Difference]:
    tp, op = _params(theirs), _params(ours)
    if tp is None or op is None:
        return []
    out = []
    ours_by_name = {p.name: p for p in op}
    absorbs = any(p.kind == p.VAR_KEYWORD for p in op)
    t_pos, o_pos = _positional(tp), _positional(op)
    for p in tp:
        if p.name.startswith("_") and p.kind != p.POSITIONAL_ONLY:
            continue
        if p.kind == p.VAR_POSITIONAL:
            if not any(q.kind == q.VAR_POSITIONAL for q in op):
                out.append(Difference(f"{key}(*{p.name})", name, "param-missing", "takes no *args"))
            continue
        if p.kind == p.VAR_KEYWORD:
            continue
        if p.kind == p.POSITIONAL_ONLY and p.name.startswith("_"):
            continue  # e.g. batch(_func, /): covered by the positional index check of ours
        q = ours_by_name.get(p.name)
        if q is None:
            kind = "param-absorbed" if absorbs else "param-missing"
            detail = "accepted through **kwargs" if absorbs else "not accepted"
            out.append(Difference(f"{key}({p.name})", name, kind, detail))
            continue
        if p.name in t_pos and q.name in o_pos and t_pos.index(p.name) != o_pos.index(q.name):
            out.append(Difference(f"{key}({p.name})", name, "param-position",
                                  f"position {o_pos.index(q.name)} here, {t_pos.index(p.name)} in Ray Serve"))
        td, od = p.default, q.default
        if (
            td is not p.empty and od is not q.empty and isinstance(td, SIMPLE) and isinstance(od, SIMPLE)
            and not isinstance(td, enum.Enum) and td != od
        ):
            out.append(Difference(f"{key}({p.name})", name, "param-default", f"default {od!r} here, {td!r} in Ray Serve"))
    return out


def _own_members(cls: type) -> dict[str, Any]:
    """Public members a class defines itself or inherits from Ray classes (not pydantic's,
    enum's or object's)."""
    out: dict[str, Any] = {}
    validators: set[str] = set()
    infos = getattr(cls, "__pydantic_decorators__", None)
    for group in ("validators", "field_validators", "root_validators", "field_serializers",
                  "model_serializers", "model_validators"):
        validators |= set(getattr(infos, group, {}) or {})
    for base in reversed(cls.__mro__):
        mod = getattr(base, "__module__", "") or ""
        if not mod.startswith("ray.") or base.__name__ in ("BaseModel",):
            continue
        for n, v in vars(base).items():
            if n.startswith("_") or n in validators:
                continue
            if callable(v) or isinstance(v, (property, staticmethod, classmethod)):
                out[n] = v
    return out


def _instance_attributes(cls: type) -> set[str]:
    """Fields and the attributes constructors assign (``self.x = ...``)."""
    names = set(getattr(cls, "model_fields", {}) or {}) | set(getattr(cls, "__dataclass_fields__", {}) or {})
    for base in cls.__mro__:
        init = vars(base).get("__init__")
        code = getattr(init, "__code__", None)
        if code is not None:
            names |= set(code.co_names)
    return names


def compare_class(key: str, theirs: type, ours: Any, user_constructed: bool = True) -> list[Difference]:
    if issubclass(theirs, BaseException) or issubclass(theirs, enum.Enum):
        return []
    out = compare_callable(key, key, theirs, ours) if user_constructed else []
    if not inspect.isclass(ours):
        return out
    attrs = _instance_attributes(ours)
    for member, value in sorted(_own_members(theirs).items()):
        if isinstance(getattr(theirs, "model_fields", None), dict) and member in theirs.model_fields:
            continue  # a field, compared with the constructor
        mine = inspect.getattr_static(ours, member, None)
        if mine is None and member not in attrs:
            out.append(Difference(f"{key}.{member}", key, "member-missing", "no such method or property"))
            continue
        fn = value.__func__ if isinstance(value, (staticmethod, classmethod)) else value
        if inspect.isfunction(fn) and mine is not None:
            ours_fn = mine.__func__ if isinstance(mine, (staticmethod, classmethod)) else mine
            if callable(ours_fn):
                out += compare_callable(f"{key}.{member}", key, fn, ours_fn)
    return out


def differences() -> tuple[list[str], list[str], list[Difference]]:
    """(Ray Serve's public names, its submodules, every difference of serve_core's surface)."""
    internal = set(load_decisions().get("made_by_serve", []))
    names: list[str] = []
    diffs: list[Difference] = []
    for ray_mod, ours_mod in MODULE_MAP.items():
        theirs = importlib.import_module(ray_mod)
        ours = importlib.import_module(ours_mod)
        for n in public_names(ray_mod):
            key = f"{SHORT[ray_mod]}.{n}"
            names.append(key)
            t = getattr(theirs, n)
            o = getattr(ours, n, None)
            if o is None:
                diffs.append(Difference(key, key, "missing", f"{ours_mod} has no {n}"))
            elif inspect.isclass(t):
                diffs += compare_class(key, t, o, user_constructed=key not in internal)
            elif callable(t):
                diffs += compare_callable(key, key, t, o)
    return names, ray_submodules(), diffs


def load_decisions() -> dict[str, Any]:
    return yaml.safe_load(DECISIONS.read_text())


def check() -> list[str]:
    """Every problem with the decisions: an empty list when each difference is decided."""
    decisions = load_decisions()
    names, submodules, diffs = differences()
    problems = []
    mod_decisions = decisions.get("modules", {})
    for m in submodules:
        if m not in MODULE_MAP and m not in mod_decisions:
            problems.append(f"Ray Serve module {m} is neither mapped to a serve_core module nor decided about")
    for m in mod_decisions:
        if m not in submodules:
            problems.append(f"decision about module {m}, which Ray Serve no longer has")
    decided = decisions.get("names", {})
    keys = {d.key for d in diffs}
    for d in diffs:
        if d.key not in decided:
            problems.append(f"undecided: {d.key} ({d.kind}: {d.detail})")
        elif d.kind in ("missing", "param-missing", "member-missing") and decided[d.key].get("status") != "not_supported":
            problems.append(f"{d.key} is missing from serve_core: its decision must be not_supported")
    for k in decisions.get("made_by_serve", []):
        if k not in names:
            problems.append(f"made_by_serve lists {k}, which is not a public name")
    for k, v in decided.items():
        if k not in keys and k not in names:
            problems.append(f"decision about {k}, which is no longer a difference or a public name")
        if not isinstance(v, dict) or v.get("status") not in ("not_supported", "difference") or not v.get("reason"):
            problems.append(f"decision {k}: give status (not_supported | difference) and a reason")
    return problems


# -- the README table -----------------------------------------------------------------

STATUS_TEXT = {"yes": "yes", "difference": "yes, with a difference", "not_supported": "no"}


def rows() -> list[tuple[str, str, str]]:
    """(names, status, note) per public name, those with one status and note grouped."""
    decisions = load_decisions()
    decided = decisions.get("names", {})
    names, _, diffs = differences()
    by_name: dict[str, list[Difference]] = {}
    for d in diffs:
        by_name.setdefault(d.name, []).append(d)
    grouped: dict[tuple[str, str, str], list[str]] = {}
    order: list[tuple[str, str, str]] = []
    for n in names:
        top = decided.get(n)
        if top is not None and top["status"] == "not_supported":
            status, note = "not_supported", top["reason"]
        else:
            notes = [top["reason"]] if top is not None else []
            parts: dict[tuple[str, str], list[str]] = {}  # (word, reason) -> labels, in order
            for d in by_name.get(n, []):
                if d.key != n and d.key in decided:
                    dec = decided[d.key]
                    word = "not supported" if dec["status"] == "not_supported" else "differs"
                    parts.setdefault((word, dec["reason"]), []).append(f"`{d.key.removeprefix(n)}`")
            notes += [f"{', '.join(labels)} {word}: {reason}" for (word, reason), labels in parts.items()]
            status = "difference" if notes else "yes"
            note = "; ".join(notes)
        group_key = (n.rsplit(".", 1)[0], status, note)
        if group_key not in grouped:
            grouped[group_key] = []
            order.append(group_key)
        grouped[group_key].append(n)
    out = []
    for g in order:
        members = grouped[g]
        label = ", ".join(f"`{m}`" for m in members)
        out.append((label, STATUS_TEXT[g[1]], g[2]))
    return out


def module_rows() -> list[tuple[str, str]]:
    decisions = load_decisions().get("modules", {})
    return [(m, f"{v['status'].replace('_', ' ')}: {v['reason']}") for m, v in sorted(decisions.items())]


def counts() -> dict[str, int]:
    decided = load_decisions().get("names", {})
    names, _, diffs = differences()
    not_supported = [n for n in names if decided.get(n, {}).get("status") == "not_supported"]
    with_diff = {d.name for d in diffs} | {n for n in names if n in decided}
    return {
        "public names": len(names),
        "supported": len(names) - len(not_supported),
        "supported with a difference": len([n for n in names if n in with_diff and n not in not_supported]),
        "not supported": len(not_supported),
    }


BEGIN = "<!-- BEGIN generated by scripts/supported_table.py: do not edit -->"
END = "<!-- END generated by scripts/supported_table.py -->"


def table() -> str:
    c = counts()
    lines = [
        BEGIN,
        "",
        f"Ray Serve {_ray_version()} has {c['public names']} public names in the modules serve_core mirrors; "
        f"serve_core has {c['supported']} of them ({c['supported with a difference']} with a documented "
        f"difference) and does not support {c['not supported']}, each for the reason given.",
        "",
        "| Ray Serve name | serve_core | note |",
        "|---|---|---|",
    ]
    lines += [f"| {label} | {status} | {_cell(note)} |" for label, status, note in rows()]
    lines += ["", "| Ray Serve module | serve_core |", "|---|---|"]
    lines += [f"| `{m}` | {_cell(text)} |" for m, text in module_rows()]
    lines += ["", END]
    return "\n".join(lines)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _ray_version() -> str:
    import ray

    return str(ray.__version__)

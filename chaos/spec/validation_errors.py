"""Pydantic validation errors of an experiment as ``Problem``s: a readable field path
(``method[0].schedule.at_s``), the bad value, a fix (the field's description, the allowed
keys, the closest name) and, for a YAML document, the line.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from typing import Annotated, Any, Union

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from chaos.errors import MISSING, Problem
from chaos.spec.experiment import Experiment


def problems_of(e: ValidationError, node: Any) -> list[Problem]:
    """The problems of a failed ``Experiment.model_validate``; ``node`` is the composed YAML
    document (for the lines) or None."""
    out: list[Problem] = []
    seen: set[str] = set()
    for err in e.errors():
        path, parent, field = _describe(err["loc"])
        typ = err["type"]
        msg = err["msg"].removeprefix("Value error, ")
        desc = f" ({field.description})" if field is not None and field.description else ""
        value: object = err.get("input")
        if typ == "missing":
            value = MISSING
            fix = f"add it{desc}"
        elif typ == "extra_forbidden":
            allowed = list(parent.model_fields) if parent is not None else []
            name = str(err["loc"][-1])
            close = difflib.get_close_matches(name, allowed, n=1)
            fix = ("remove it" + (f" (did you mean {close[0]}?)" if close else "")
                   + (f"; allowed here: {', '.join(allowed)}" if allowed else ""))
        elif typ in ("union_tag_invalid", "union_tag_not_found"):
            tags = err.get("ctx", {}).get("expected_tags", "")
            fix = f"set kind to one of {tags}".replace("'", "")
            if typ == "union_tag_invalid":
                path, value = path + ".kind", err.get("ctx", {}).get("tag")
            else:
                value = MISSING
                path += ".kind"
        elif typ == "literal_error":
            fix = msg.replace("Input should be", "use")
        else:
            fix = msg + desc
        key = f"{path}|{fix}"
        if key not in seen:
            seen.add(key)
            out.append(Problem(path, value, fix, _line(node, err["loc"])))
    return out


def with_line(p: Problem, node: Any) -> Problem:
    """``p`` with the line of its path in the composed YAML document ``node`` (if any)."""
    if node is None:
        return p
    loc: list[str | int] = []
    for part in re.split(r"\.", p.path):
        m = re.fullmatch(r"([^\[]+)((?:\[\d+\])*)", part)
        if not m:
            break
        loc.append(m.group(1))
        loc += [int(x) for x in re.findall(r"\[(\d+)\]", m.group(2))]
    return Problem(p.path, p.value, p.fix, _line(node, tuple(loc)))


def _line(node: Any, loc: tuple[Any, ...]) -> int | None:
    """Line (1-based) of the deepest YAML node along ``loc``; parts absent from the YAML
    (such as discriminator tags) are skipped."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if getattr(k, "value", None) == str(part):
                    child = v
                    line = k.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            continue
        node = child
    return line


def _describe(loc: tuple[Any, ...]) -> tuple[str, type[BaseModel] | None, FieldInfo | None]:
    """A readable path (``method[0].schedule.at_s``) for a pydantic ``loc``, with the model
    holding the last field and that field's info."""
    text = ""
    tp: Any = Experiment
    parent: type[BaseModel] | None = None
    field: FieldInfo | None = None
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(part, int):
            text += f"[{part}]"
            args = typing.get_args(tp)
            tp = args[0] if args else None
            continue
        members = _union_members(tp)
        if members:  # a discriminator tag (skipped in the path), or a field of one member
            tagged = [m for m in members if _tag(m) == part]
            if tagged:
                tp = tagged[0]
                continue
            having = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel) and part in m.model_fields]
            tp = having[0] if having else None
            tp = _unwrap(tp)
        text += ("." if text else "") + str(part)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            parent = tp
            field = tp.model_fields.get(str(part))
            tp = field.annotation if field is not None else None
        elif typing.get_origin(tp) is dict:
            tp = typing.get_args(tp)[1]
            field = None
        else:
            tp, field = None, None
    return text or "(document)", parent, field


def _unwrap(tp: Any) -> Any:
    while typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    members = _union_members(tp)
    if members and len([m for m in members if m is not type(None)]) == 1:
        return next(m for m in members if m is not type(None))
    return tp


def _union_members(tp: Any) -> tuple[Any, ...]:
    if typing.get_origin(tp) in (Union, types.UnionType):
        return tuple(_unwrap(m) for m in typing.get_args(tp))
    return ()


def _tag(model: Any) -> str | None:
    if isinstance(model, type) and issubclass(model, BaseModel) and "kind" in model.model_fields:
        default = model.model_fields["kind"].default
        return default if isinstance(default, str) else None
    return None

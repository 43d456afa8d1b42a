"""Block parameters: declared once, validated, listed and parsed from the same declaration.

Every block config is a ``@dataclass(frozen=True, kw_only=True)`` whose fields are made with
:func:`param`. The field metadata (allowed range or choices, unit, help text) drives
validation in ``__post_init__`` (:func:`validate`), the ``peforge blocks`` listing
(:func:`describe`) and ``KEY=VALUE`` parsing on the command line (:func:`from_assignments`).
A field made with :func:`nested` holds a sub-block's config (an array's PE), chosen by another
field and set as ``<selector>.<name>=VALUE``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Iterable, Sequence


@dataclass(frozen=True)
class ParamSpec:
    """What a parameter may hold."""

    doc: str
    low: int | None = None
    high: int | None = None
    choices: tuple[Any, ...] | None = None

    def allowed(self) -> str:
        if self.choices is not None:
            return " | ".join(_fmt(c) for c in self.choices)
        return f"{self.low}..{self.high}"


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def param(default: Any, doc: str, *, low: int | None = None, high: int | None = None,
          choices: Sequence[Any] | None = None) -> Any:
    """A dataclass field with its allowed values; ``bool`` fields need no range."""
    if isinstance(default, bool) and choices is None:
        choices = (False, True)
    spec = ParamSpec(doc, low, high, tuple(choices) if choices is not None else None)
    return dataclasses.field(default=default, metadata={"spec": spec})


def specs(cls_or_cfg: Any) -> list[tuple[dataclasses.Field, ParamSpec]]:
    return [(f, f.metadata["spec"]) for f in dataclasses.fields(cls_or_cfg) if "spec" in f.metadata]


def spec_of(cls_or_cfg: Any, name: str) -> ParamSpec:
    """The declaration of parameter ``name`` (its range or choices, declared once)."""
    return next(spec for f, spec in specs(cls_or_cfg) if f.name == name)


@dataclass(frozen=True)
class NestedSpec:
    """A sub-block config whose class is chosen by the value of field ``selector``."""

    doc: str
    selector: str
    choices: tuple[tuple[str, type], ...]

    def chosen(self, cfg_or_values: Any) -> type:
        key = cfg_or_values[self.selector] if isinstance(cfg_or_values, dict) else getattr(cfg_or_values, self.selector)
        return dict(self.choices)[key]


def nested(selector: str, choices: dict[str, type], doc: str) -> Any:
    """A field holding the config of a sub-block, of the class ``choices[<value of selector>]``.

    Users set its parameters as ``<selector>.<name>=VALUE``. Left at ``None`` it becomes that
    class's defaults; a ``dict`` (what :func:`as_dict` gives) is turned into that class.
    """
    return dataclasses.field(default=None, metadata={"nested": NestedSpec(doc, selector, tuple(choices.items()))})


def nested_specs(cls_or_cfg: Any) -> list[tuple[dataclasses.Field, NestedSpec]]:
    return [(f, f.metadata["nested"]) for f in dataclasses.fields(cls_or_cfg) if "nested" in f.metadata]


def validate(cfg: Any) -> None:
    """Check every field against its declaration; raise ``ValueError`` naming field and range."""
    name = type(cfg).__name__
    for f, spec in specs(cfg):
        value = getattr(cfg, f.name)
        expected = type(f.default)
        if type(value) is not expected:
            raise ValueError(f"{name}.{f.name} must be {expected.__name__}, not {value!r}")
        if spec.choices is not None and value not in spec.choices:
            raise ValueError(f"{name}.{f.name}={value!r} is not allowed; choose one of {spec.allowed()}")
        if spec.low is not None and not spec.low <= value <= spec.high:
            raise ValueError(f"{name}.{f.name}={value!r} is out of range; allowed {spec.allowed()}")
    for f, nspec in nested_specs(cfg):
        # The selector was checked above, so the chosen class exists; a frozen dataclass
        # can only be completed through object.__setattr__.
        chosen = nspec.chosen(cfg)
        value = getattr(cfg, f.name)
        if value is None:
            value = chosen()
        elif isinstance(value, dict):
            value = chosen(**value)
        elif type(value) is not chosen:
            raise ValueError(f"{name}.{f.name} must be a {chosen.__name__} for "
                             f"{nspec.selector}={getattr(cfg, nspec.selector)!r}, not {type(value).__name__}")
        object.__setattr__(cfg, f.name, value)


def describe(cls: type) -> list[dict[str, str]]:
    """One row per parameter: name, default, allowed values, meaning."""
    rows = [{"name": f.name, "default": _fmt(f.default), "allowed": spec.allowed(), "doc": spec.doc}
            for f, spec in specs(cls)]
    for _, nspec in nested_specs(cls):
        for key, sub in nspec.choices:
            rows += [{**row, "name": f"{nspec.selector}.{row['name']}", "doc": f"[{nspec.selector}={key}] {row['doc']}"}
                     for row in describe(sub)]
    return rows


def parse_value(cls: type, key: str, text: str) -> Any:
    """Convert a command-line string to the type of field ``key`` of ``cls``."""
    fields = {f.name: f for f, _ in specs(cls)}
    if key not in fields:
        raise ValueError(f"unknown parameter {key!r}; known: {', '.join(fields)}")
    kind = type(fields[key].default)
    if kind is bool:
        lowered = text.lower()
        if lowered not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"{key}={text!r}: expected true or false")
        return lowered in ("true", "1", "yes")
    if kind is int:
        try:
            return int(text, 0)
        except ValueError:
            raise ValueError(f"{key}={text!r}: expected an integer") from None
    return text


def from_assignments(cls: type, assignments: Iterable[str]) -> Any:
    """Build ``cls`` from ``KEY=VALUE`` strings (the command-line form)."""
    values: dict[str, Any] = {}
    inner: dict[str, list[tuple[str, str]]] = {}  # selector -> (name, text) of its sub-block
    selectors = {spec.selector for _, spec in nested_specs(cls)}
    seen: set[str] = set()
    for item in assignments:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{item!r}: expected KEY=VALUE")
        if key in seen:
            raise ValueError(f"{key} is given twice; give each parameter once")
        seen.add(key)
        head, dot, rest = key.partition(".")
        if dot and head in selectors:
            inner.setdefault(head, []).append((rest, text))
        else:
            values[key] = parse_value(cls, key, text)
    for f, nspec in nested_specs(cls):
        if nspec.selector not in inner:
            continue
        selected = values.get(nspec.selector, next(g.default for g, _ in specs(cls) if g.name == nspec.selector))
        if selected not in dict(nspec.choices):
            return cls(**values)  # raises the selector's own message
        sub = dict(nspec.choices)[selected]
        known = [g.name for g, _ in specs(sub)]
        sub_values = {}
        for name, text in inner[nspec.selector]:
            if name not in known:
                raise ValueError(f"unknown parameter '{nspec.selector}.{name}' for {nspec.selector}={selected}; "
                                 f"known: {', '.join(f'{nspec.selector}.{k}' for k in known)}")
            sub_values[name] = parse_value(sub, name, text)
        values[f.name] = sub(**sub_values)
    return cls(**values)


def as_dict(cfg: Any) -> dict[str, Any]:
    """Field values by name, nested configs as dicts: JSON-ready, and ``type(cfg)(**as_dict(cfg)) == cfg``."""
    values = {f.name: getattr(cfg, f.name) for f, _ in specs(cfg)}
    values.update({f.name: as_dict(getattr(cfg, f.name)) for f, _ in nested_specs(cfg)})
    return values


def config_hash(cfg: Any) -> str:
    """A short stable hash of a config's class and values: names build folders and cache entries."""
    text = json.dumps({"block": type(cfg).__name__, **as_dict(cfg)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]

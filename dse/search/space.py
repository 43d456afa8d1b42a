"""A search space from a TOML file: parameters over design keys, objectives, constraints.

A space file names design keys (the layout of a design file, dotted: ``compute.rows``,
``compute.pe_params.k``, ``memory.units``, ``batch``) and what each may be::

    description = "one line shown in reports"

    [workload]                      # defaults of the sweep's workload; command-line flags win
    model = "llama-2-7b"
    seq = 512
    gen = 128
    quant = "w4a8kv8"

    [fixed]                         # design keys every point shares (design-file layout)
    tech = "7nm"
    [fixed.memory]
    technology = "LPDDR5"

    [param."compute.pe"]
    type = "categorical"
    choices = ["mac", "bitserial"]

    [param."compute.rows"]
    type = "int"
    low = 8
    high = 128
    scale = "pow2"                  # linear (default, with step) | log | pow2

    [param."compute.clock_mhz"]
    type = "float"
    low = 200.0
    high = 1000.0
    step = 100.0                    # optional; log = true for a log-uniform float

    [param.bitserial_k]             # a conditional parameter; `path` when the name differs
    path = "compute.pe_params.k"
    type = "categorical"
    choices = [1, 2, 4]
    when = { "compute.pe" = "bitserial" }

    [param.bitserial_lanes]         # a fixed value, only where its condition holds
    path = "compute.pe_params.lanes"
    type = "fixed"
    value = 8
    when = { "compute.pe" = "bitserial" }

    [objectives]                    # metric = "minimize" | "maximize"
    tokens_per_s = "maximize"
    j_per_token = "minimize"

    [constraints]                   # metric = { max = .. } and/or { min = .. }
    area_mm2 = { max = 20.0 }

A ``when`` condition names categorical parameters declared above it, each with one allowed
value or a list of them. Every error is one line naming the file, the key and what is allowed.

Systems of chips: ``system.chips``, ``system.tp``, ``system.pp`` and ``system.ep`` may be varied
(or fixed) like any key, under the product rule ``tp x pp x ep == chips``. The rule of a space:
where a point sets ``system.chips`` and leaves exactly one of ``tp``, ``pp``, ``ep`` unset, that
degree is derived, ``chips / (product of the other two)``; a point where it is not a whole number
is infeasible (:class:`InfeasiblePoint`, a ``ValueError``): the sweep records it as a failed trial
with its reason, and the space's check skips it. Drawing ``tp`` from the divisors of each
``chips`` value (a conditional parameter per value) keeps every point feasible.
"""

from __future__ import annotations

import copy
import itertools
import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

from ...files import read_input
from ..cost.metrics import METRICS
from ..design.point import SCALAR_KEYS, DesignPoint, _GROUPS, design_from_dict

DIRECTIONS = ("minimize", "maximize")
PARAM_TYPES = ("categorical", "int", "float", "fixed")
INT_SCALES = ("linear", "log", "pow2")
WORKLOAD_KEYS = {"model": str, "seq": int, "gen": int, "quant": str}
TOP_KEYS = ("description", "workload", "fixed", "param", "objectives", "constraints", "serving")
GRID_LIMIT = 200_000  # points; a bigger grid is a mistake, not a sweep


@dataclass(frozen=True)
class Param:
    """One searched (or conditionally fixed) design key.

    Parameters
    ----------
    name : the parameter's name in the space file (and the trials table's column)
    path : the design key it sets, dotted (``compute.pe_params.k``)
    kind : categorical | int | float | fixed
    choices : categorical values; value : the fixed value
    low, high, step : bounds of int / float (inclusive); ``step`` None: continuous float
    scale : int only: linear | log | pow2; log : float only: log-uniform
    when : conditions, parameter name -> allowed values; the parameter exists only where all hold
    """

    name: str
    path: str
    kind: str
    choices: tuple[Any, ...] = ()
    value: Any = None
    low: float = 0
    high: float = 0
    step: float | None = None
    scale: str = "linear"
    log: bool = False
    when: tuple[tuple[str, tuple[Any, ...]], ...] = ()

    @property
    def optuna_name(self) -> str:
        """The name Optuna records: a pow2 parameter is searched by its exponent."""
        return f"log2({self.name})" if self.scale == "pow2" else self.name

    def values(self) -> list[Any]:
        """Every value the parameter can take (``ValueError`` for a continuous float)."""
        if self.kind == "categorical":
            return list(self.choices)
        if self.kind == "fixed":
            return [self.value]
        if self.kind == "int":
            if self.scale == "pow2":
                return [1 << e for e in range(int(self.low).bit_length() - 1, int(self.high).bit_length())]
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.step is None:
            raise ValueError(f"parameter {self.name!r} is a continuous float; give it a step to enumerate it")
        count = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
        return [round(self.low + i * self.step, 12) for i in range(count)]

    def corners(self) -> list[Any]:
        """The values that bound the parameter: every choice, or low and high."""
        if self.kind in ("categorical", "fixed"):
            return self.values()
        if self.kind == "int" and self.scale == "pow2":
            values = self.values()
            return [values[0], values[-1]]
        high = self.high
        if self.step is not None:  # the highest value on the step grid
            high = self.low + math.floor((self.high - self.low) / self.step + 1e-9) * self.step
            high = int(high) if self.kind == "int" else high
        return [self.low, high]

    def suggest(self, trial: Any) -> Any:
        """Draw this parameter's value in an Optuna trial."""
        if self.kind == "fixed":
            return self.value
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            if self.scale == "pow2":
                low, high = int(self.low).bit_length() - 1, int(self.high).bit_length() - 1
                return 1 << trial.suggest_int(self.optuna_name, low, high)
            if self.scale == "log":
                return trial.suggest_int(self.name, int(self.low), int(self.high), log=True)
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1))
        if self.log:
            return trial.suggest_float(self.name, self.low, self.high, log=True)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step)

    def active(self, assignment: dict[str, Any]) -> bool:
        """Whether every condition holds for the parameters drawn so far."""
        return all(name in assignment and assignment[name] in allowed for name, allowed in self.when)


@dataclass(frozen=True)
class Objective:
    metric: str
    direction: str


@dataclass(frozen=True)
class Constraint:
    """``metric`` must stay within ``[low, high]`` (either bound may be None)."""

    metric: str
    low: float | None = None
    high: float | None = None

    def violation(self, value: float) -> float:
        """How far ``value`` is outside the bounds, relative to the bound (≤ 0: satisfied).

        Relative, so that constraints in different units add up fairly when a sampler ranks
        infeasible points by their total violation.
        """
        worst = -math.inf
        if self.high is not None:
            worst = max(worst, (value - self.high) / max(abs(self.high), 1e-30))
        if self.low is not None:
            worst = max(worst, (self.low - value) / max(abs(self.low), 1e-30))
        return worst

    def describe(self) -> str:
        parts = []
        if self.low is not None:
            parts.append(f"{self.metric} >= {self.low:g}")
        if self.high is not None:
            parts.append(f"{self.metric} <= {self.high:g}")
        return " and ".join(parts)


@dataclass(frozen=True)
class Space:
    """A validated search space (see the module docstring for the file format).

    ``source`` is the file's text, kept so that a study records exactly what it searched.
    """

    name: str
    where: str
    description: str
    params: tuple[Param, ...]
    fixed: dict[str, Any] = field(hash=False)
    objectives: tuple[Objective, ...]
    constraints: tuple[Constraint, ...]
    workload: dict[str, Any] = field(hash=False)
    source: str = ""
    serving: dict[str, Any] = field(default_factory=dict, hash=False)  # [serving] (peforge.dse.serve.space)

    @property
    def directions(self) -> list[str]:
        return [o.direction for o in self.objectives]

    @property
    def metrics(self) -> list[str]:
        """Metrics the space needs: objectives first, then constrained ones."""
        names = [o.metric for o in self.objectives]
        return names + [c.metric for c in self.constraints if c.metric not in names]

    # --- drawing and building -----------------------------------------------------------

    def draw(self, trial: Any) -> dict[str, Any]:
        """The active parameters' values for an Optuna trial, in declaration order."""
        assignment: dict[str, Any] = {}
        for p in self.params:
            if p.active(assignment):
                assignment[p.name] = p.suggest(trial)
        return assignment

    def design(self, assignment: dict[str, Any], name: str | None = None) -> DesignPoint:
        """The design point of an assignment (``ValueError`` naming the space if it is not valid;
        :class:`InfeasiblePoint` where the product rule of a system leaves no whole degree)."""
        data = copy.deepcopy(self.fixed)
        for p in self.params:
            if p.name in assignment:
                _set_path(data, p.path, assignment[p.name])
        data["name"] = name or self.name
        where = f"{self.where}: point {_short(assignment)}"
        _derive_degree(data, where)
        return design_from_dict(data, where)

    def suggest(self, trial: Any) -> DesignPoint:
        """Draw a design point in an Optuna trial (named ``<space>-<trial number>``)."""
        return self.design(self.draw(trial), f"{self.name}-{trial.number}")

    def points(self) -> Iterator[dict[str, Any]]:
        """Every assignment of a finite space, conditions respected, in a fixed order."""
        return assignments(self.params)

    def size(self) -> int:
        """Number of points of a finite space (``ValueError`` for a continuous one)."""
        for p in self.params:
            p.values()  # raises for a continuous float
        return sum(1 for _ in self.points())

    def corner_points(self, limit: int = 512) -> Iterator[dict[str, Any]]:
        """Assignments that reach every parameter's bounds: each combination of the
        categorical parameters (at most ``limit``), with numbers all at low, then all at high."""
        categorical = [p for p in self.params if p.kind in ("categorical", "fixed")]
        combos = itertools.islice(itertools.product(*(p.values() for p in categorical)), limit)
        for combo in combos:
            chosen = dict(zip((p.name for p in categorical), combo))
            for end in (0, -1):
                assignment: dict[str, Any] = {}
                for p in self.params:
                    if p.active(assignment):
                        assignment[p.name] = chosen[p.name] if p.name in chosen else p.corners()[end]
                yield assignment

    def check(self) -> None:
        """Build the design of every corner point; the first invalid one raises ``ValueError``."""
        seen, feasible, first = set(), 0, None
        for assignment in self.corner_points():
            key = tuple(sorted((k, repr(v)) for k, v in assignment.items()))
            if key not in seen:
                seen.add(key)
                try:
                    self.design(assignment)
                    feasible += 1
                except InfeasiblePoint as error:  # the product rule: a point the sweep rejects, not a bad space
                    first = first or error
        if not feasible and first is not None:
            raise ValueError(f"{first} (and every other corner point)")


class InfeasiblePoint(ValueError):
    """A point whose system degrees cannot multiply to its chips (the module's product rule)."""


_DEGREES = ("tp", "pp", "ep")


def _derive_degree(data: dict[str, Any], where: str) -> None:
    """The product rule (module docstring): the one unset degree of a system with ``chips`` set."""
    system = data.get("system")
    if not isinstance(system, dict) or "chips" not in system:
        return
    unset = [d for d in _DEGREES if d not in system]
    if len(unset) != 1:
        return
    chips, others = system["chips"], [system[d] for d in _DEGREES if d in system]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in (chips, *others)):
        return  # the design's own checks name the bad value
    product = math.prod(others)
    if chips % product:
        raise InfeasiblePoint(f"{where}: infeasible: system.chips={chips} is not a multiple of "
                              f"{' x '.join(d for d in _DEGREES if d in system)} = {product}, so system.{unset[0]} "
                              f"= chips / {product} is no whole number; allowed: degrees whose product divides chips")
    system[unset[0]] = chips // product


def assignments(params: tuple[Param, ...] | list[Param]) -> Iterator[dict[str, Any]]:
    """Every assignment of finite ``params`` (conditions respected), depth first in their order."""
    def walk(index: int, assignment: dict[str, Any]) -> Iterator[dict[str, Any]]:
        if index == len(params):
            yield dict(assignment)
            return
        p = params[index]
        if not p.active(assignment):
            yield from walk(index + 1, assignment)
            return
        for value in p.values():
            assignment[p.name] = value
            yield from walk(index + 1, assignment)
        del assignment[p.name]

    return walk(0, {})


# --- reading ------------------------------------------------------------------------------

def shipped_spaces() -> list[str]:
    """Names of the spaces that ship with peforge (``dse/spaces/*.toml``)."""
    folder = resources.files("peforge.dse") / "spaces"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_space(name_or_path: str | Path) -> Space:
    """A shipped space by name (``edge``) or a space file by path, validated."""
    text_name = str(name_or_path)
    if text_name in shipped_spaces() and not Path(text_name).exists():
        resource = resources.files("peforge.dse") / "spaces" / f"{text_name}.toml"
        return parse_space(resource.read_text(), where=f"space {text_name}", name=text_name)
    path = Path(name_or_path)
    if not path.exists():
        raise ValueError(f"--space {text_name}: no such space file or shipped space "
                         f"(shipped: {', '.join(shipped_spaces())})")
    return parse_space(read_input(path, "space file"), where=str(path), name=path.stem)


def parse_space(text: str, *, where: str, name: str) -> Space:
    """Validate the text of a space file; ``where`` names it in errors, ``name`` names the space."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{where}: not valid TOML ({error})") from None
    for key in data:
        if key not in TOP_KEYS:
            raise ValueError(f"{where}: unknown key {key!r}; allowed: {', '.join(TOP_KEYS)}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise ValueError(f"{where}: description must be a string")
    workload = _workload(data.get("workload", {}), where)
    fixed = data.get("fixed", {})
    if not isinstance(fixed, dict):
        raise ValueError(f"{where}: [fixed] must be a table (design-file layout)")
    params = _params(data.get("param"), where)
    for p in params:
        if _get_path(fixed, p.path) is not _MISSING:
            raise ValueError(f"{where}: [param.{_q(p.name)}] sets {p.path}, which [fixed] also sets; keep one")
    serving = {}
    if "serving" in data:
        from ..serve.space import parse_serving

        serving = parse_serving(data["serving"], where)
    objectives = _objectives(data.get("objectives"), where, serving)
    constraints = _constraints(data.get("constraints", {}), where, serving)
    space = Space(name=name, where=where, description=description, params=tuple(params), fixed=fixed,
                  objectives=tuple(objectives), constraints=tuple(constraints), workload=workload, source=text,
                  serving=serving)
    space.check()
    return space


_MISSING = object()


def _q(name: str) -> str:
    return f'"{name}"' if "." in name else name


def _short(assignment: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{k}={v!r}" for k, v in assignment.items()) + "}"


def _get_path(data: dict[str, Any], path: str) -> Any:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _set_path(data: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def _valid_path(path: str) -> bool:
    """A design key: ``tech``, ``batch``, ``quant``, ``<group>.<field>`` or ``compute.pe_params.<name>``."""
    parts = path.split(".")
    if len(parts) == 1:
        return parts[0] in SCALAR_KEYS and parts[0] != "name"
    group = _GROUPS.get(parts[0])
    if group is None:
        return False
    if len(parts) == 3 and parts[:2] == ["compute", "pe_params"]:
        return bool(parts[2])
    fields = [f for f in group.__dataclass_fields__ if f != "pe_params"]
    return len(parts) == 2 and parts[1] in fields


def typed_table(table: Any, kinds: dict[str, type], group: str, where: str) -> dict[str, Any]:
    """A small TOML table of scalars checked against ``kinds`` (key -> str, int, float or bool):
    a table, known keys, values of their kind (a float also as an integer; finite), numbers
    positive; otherwise one line naming ``group.key`` and what is allowed."""
    if not isinstance(table, dict):
        raise ValueError(f"{where}: [{group}] must be a table")
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    for key, value in table.items():
        if key not in kinds:
            raise ValueError(f"{where}: unknown key {group}.{key}; allowed: {', '.join(kinds)}")
        kind = kinds[key]
        ok = (isinstance(value, bool) if kind is bool else _number(value) if kind is float else
              isinstance(value, kind) and not isinstance(value, bool))
        if not ok:
            raise ValueError(f"{where}: {group}.{key} must be {names[kind]}, not {value!r}")
        if kind in (int, float) and value <= 0:
            raise ValueError(f"{where}: {group}.{key} must be positive, not {value!r}")
    return dict(table)


def _workload(table: Any, where: str) -> dict[str, Any]:
    return typed_table(table, WORKLOAD_KEYS, "workload", where)


def _number(value: Any) -> bool:
    """A finite number (TOML allows nan and inf, which mean nothing as a bound)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


_PARAM_KEYS = {
    "categorical": {"type", "path", "choices", "when"},
    "int": {"type", "path", "low", "high", "step", "scale", "when"},
    "float": {"type", "path", "low", "high", "step", "log", "when"},
    "fixed": {"type", "path", "value", "when"},
}


def _params(table: Any, where: str) -> list[Param]:
    if table is None:
        raise ValueError(f"{where}: no [param.<name>] tables; a space needs at least one parameter")
    if not isinstance(table, dict) or not table:
        raise ValueError(f"{where}: param must hold [param.<name>] tables")
    params: list[Param] = []
    by_name: dict[str, Param] = {}
    for name, spec in table.items():
        here = f"{where}: [param.{_q(name)}]"
        if not isinstance(spec, dict):
            raise ValueError(f"{here} must be a table")
        if name in METRICS:
            raise ValueError(f"{here}: the name {name!r} is a metric's; give the parameter another name and a path")
        kind = spec.get("type")
        if kind not in PARAM_TYPES:
            raise ValueError(f"{here}: type must be one of {', '.join(PARAM_TYPES)}, not {kind!r}")
        for key in spec:
            if key not in _PARAM_KEYS[kind]:
                raise ValueError(f"{here}: unknown key {key!r} for a {kind} parameter; "
                                 f"allowed: {', '.join(sorted(_PARAM_KEYS[kind]))}")
        path = spec.get("path", name)
        if not isinstance(path, str) or not _valid_path(path):
            raise ValueError(f"{here}: {path!r} is not a design key ({', '.join(k for k in SCALAR_KEYS if k != 'name')}, <group>.<key> with groups "
                             f"{', '.join(_GROUPS)}, or compute.pe_params.<name>)")
        when = _when(spec.get("when", {}), here, by_name)
        fields: dict[str, Any] = {"name": name, "path": path, "kind": kind, "when": when}
        if kind == "categorical":
            fields["choices"] = _choices(spec.get("choices"), here)
        elif kind == "fixed":
            if "value" not in spec:
                raise ValueError(f"{here}: a fixed parameter needs value")
            fields["value"] = spec["value"]
        else:
            fields.update(_range(spec, kind, here))
        param = Param(**fields)
        for other in params:
            if other.path == param.path and not _exclusive(other.when, param.when):
                raise ValueError(f"{here}: sets {path}, as [param.{_q(other.name)}] does, and both can hold "
                                 f"at once; give them conditions that exclude each other")
        params.append(param)
        by_name[name] = param
    return params


def _choices(choices: Any, here: str) -> tuple[Any, ...]:
    if not isinstance(choices, list) or not choices:
        raise ValueError(f"{here}: choices must be a non-empty list")
    kinds = {type(c) for c in choices}
    if kinds - {str, int, float, bool} or (len(kinds) > 1 and kinds != {int, float}):
        raise ValueError(f"{here}: choices must all be strings, all numbers or all booleans, not {choices!r}")
    if len(set(choices)) != len(choices):
        raise ValueError(f"{here}: choices repeat a value: {choices!r}")
    return tuple(choices)


def _range(spec: dict[str, Any], kind: str, here: str) -> dict[str, Any]:
    low, high, step = spec.get("low"), spec.get("high"), spec.get("step")
    want_int = kind == "int"
    for key, value in (("low", low), ("high", high)):
        if value is None:
            raise ValueError(f"{here}: an {kind} parameter needs low and high")
        if not _number(value) or (want_int and not isinstance(value, int)):
            raise ValueError(f"{here}: {key} must be a{'n integer' if want_int else ' number'}, not {value!r}")
    if low > high:
        raise ValueError(f"{here}: low ({low}) must not exceed high ({high})")
    if step is not None and (not _number(step) or step <= 0 or (want_int and not isinstance(step, int))):
        raise ValueError(f"{here}: step must be a positive {'integer' if want_int else 'number'}, not {step!r}")
    out: dict[str, Any] = {"low": low, "high": high, "step": step}
    if want_int:
        scale = spec.get("scale", "linear")
        if scale not in INT_SCALES:
            raise ValueError(f"{here}: scale must be one of {', '.join(INT_SCALES)}, not {scale!r}")
        if scale != "linear" and step is not None:
            raise ValueError(f"{here}: step goes with scale = \"linear\" only")
        if scale in ("log", "pow2") and low < 1:
            raise ValueError(f"{here}: a {scale} scale needs low >= 1, not {low}")
        if scale == "pow2" and any(v & (v - 1) for v in (low, high)):
            raise ValueError(f"{here}: a pow2 scale needs powers of two for low and high, not {low} and {high}")
        out["scale"] = scale
    else:
        log = spec.get("log", False)
        if not isinstance(log, bool):
            raise ValueError(f"{here}: log must be true or false, not {log!r}")
        if log and (low <= 0 or step is not None):
            raise ValueError(f"{here}: log = true needs low > 0 and no step")
        out.update(low=float(low), high=float(high), step=None if step is None else float(step), log=log)
    return out


def _when(table: Any, here: str, by_name: dict[str, Param]) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    if not isinstance(table, dict):
        raise ValueError(f"{here}: when must be a table, e.g. when = {{ \"compute.pe\" = \"bitserial\" }}")
    out = []
    for name, allowed in table.items():
        other = by_name.get(name)
        if other is None or other.kind not in ("categorical", "fixed"):
            raise ValueError(f"{here}: when names {name!r}, which is not a categorical parameter declared above")
        values = tuple(allowed) if isinstance(allowed, list) else (allowed,)
        for value in values:
            if value not in other.values():
                raise ValueError(f"{here}: when {name} = {value!r}, which is not one of its values "
                                 f"({', '.join(map(repr, other.values()))})")
        out.append((name, values))
    return tuple(out)


def _exclusive(a: tuple, b: tuple) -> bool:
    """Whether two conditions can never hold together (they disagree on a shared parameter)."""
    left = dict(a)
    return any(name in left and not set(left[name]) & set(values) for name, values in b)


def _known(metric: str, serving: dict[str, Any]) -> bool:
    """A cost-model metric, or (the space has ``[serving]``) a serving one."""
    if metric in METRICS:
        return True
    from ..serve.space import SERVING_METRICS

    return bool(serving) and metric in SERVING_METRICS


def _objectives(table: Any, where: str, serving: dict[str, Any]) -> list[Objective]:
    if not isinstance(table, dict) or not table:
        raise ValueError(f"{where}: [objectives] must name at least one metric: "
                         f"metric = \"minimize\" | \"maximize\"")
    out = []
    for metric, direction in table.items():
        if not _known(metric, serving):
            raise ValueError(f"{where}: objectives.{metric}: unknown metric; allowed: {', '.join(METRICS)}"
                             f" (and, with [serving], goodput_rps, max_rate_rps, goodput_per_mm2, goodput_per_w)")
        if direction not in DIRECTIONS:
            raise ValueError(f"{where}: objectives.{metric} must be \"minimize\" or \"maximize\", not {direction!r}")
        out.append(Objective(metric, direction))
    return out


def _constraints(table: Any, where: str, serving: dict[str, Any]) -> list[Constraint]:
    if not isinstance(table, dict):
        raise ValueError(f"{where}: [constraints] must be a table: metric = {{ max = .. }} or {{ min = .. }}")
    out = []
    for metric, bounds in table.items():
        here = f"{where}: constraints.{metric}"
        if not _known(metric, serving):
            raise ValueError(f"{here}: unknown metric; allowed: {', '.join(METRICS)}"
                             f" (and, with [serving], goodput_rps, max_rate_rps, goodput_per_mm2, goodput_per_w)")
        if not isinstance(bounds, dict) or not bounds or set(bounds) - {"min", "max"}:
            raise ValueError(f"{here} must be {{ max = <number> }}, {{ min = <number> }} or both")
        for key, value in bounds.items():
            if not _number(value):
                raise ValueError(f"{here}.{key} must be a finite number, not {value!r}")
        if "min" in bounds and "max" in bounds and bounds["min"] > bounds["max"]:
            raise ValueError(f"{here}: min ({bounds['min']}) exceeds max ({bounds['max']})")
        out.append(Constraint(metric, low=bounds.get("min"), high=bounds.get("max")))
    return out

"""Characterize every PE configuration of a space before the search starts, and the arrays and
PIM channels its unit costs are fitted on.

A first characterization takes seconds to a minute (simulation and Yosys); the result is
cached on disk. Doing it up front, once, shows the user what is happening, keeps the trials'
durations honest and stops parallel workers from measuring the same PE twice.
"""

from __future__ import annotations

import itertools
import time
from typing import Any, Callable

from ...hw.blocks import block_named
from ..design.point import Compute, Pim
from .space import Param, Space, assignments

PE_PATHS = ("compute.pe", "compute.pe_params.")
DEFAULT_PE = Compute.__dataclass_fields__["pe"].default  # a design's PE when the space fixes none
LIMIT = 64  # more distinct PE configurations than this: characterize on first need instead


def _pe_related(space: Space) -> list[Param]:
    """Parameters that shape the PE, plus those their conditions depend on, in space order."""
    wanted = {p.name for p in space.params if p.path == "compute.pe" or p.path.startswith(PE_PATHS[1])}
    changed = True
    while changed:
        changed = False
        for p in space.params:
            if p.name in wanted:
                for name, _ in p.when:
                    if name not in wanted:
                        wanted.add(name)
                        changed = True
    return [p for p in space.params if p.name in wanted]


def pe_configs(space: Space) -> list[Any] | None:
    """The distinct PE configs a space can reach, or ``None`` when there are too many (or a
    continuous parameter shapes the PE)."""
    related = _pe_related(space)
    try:
        sizes = [len(p.values()) for p in related]
    except ValueError:
        return None
    if sizes and (max(sizes) > LIMIT or sum(1 for _ in itertools.islice(assignments(related), LIMIT * 8 + 1)) > LIMIT * 8):
        return None
    base = space.fixed.get("compute", {})
    configs: dict[str, Any] = {}
    for assignment in assignments(related):
        compute = {"pe": base.get("pe", DEFAULT_PE), "pe_params": dict(base.get("pe_params", {}))}
        for p in related:
            if p.name in assignment:
                if p.path == "compute.pe":
                    compute["pe"] = assignment[p.name]
                elif p.path.startswith(PE_PATHS[1]):
                    compute["pe_params"][p.path[len(PE_PATHS[1]):]] = assignment[p.name]
        config = block_named(compute["pe"]).config(**compute["pe_params"])
        configs.setdefault(repr(config), config)
        if len(configs) > LIMIT:
            return None
    return list(configs.values())


def label(config: Any) -> str:
    """``bitserial(lanes=8, k=2)``: the block and the parameters that differ from its defaults."""
    from ...hw import params as hw_params
    from ...hw.blocks import block_of

    block = block_of(config)
    defaults = hw_params.as_dict(block.config())
    changed = {k: v for k, v in hw_params.as_dict(config).items() if defaults.get(k) != v}
    if not changed:
        return block.name
    return f"{block.name}({', '.join(f'{k}={v}' for k, v in changed.items())})"


def values_of(space: Space, path: str, default: Any) -> list[Any]:
    """The values a space can give design key ``path`` (its parameter's, its fixed value, or ``default``)."""
    for p in space.params:
        if p.path == path:
            try:
                return list(p.values())
            except ValueError:  # a continuous parameter: not a key that picks a fit
                return [default]
    head, _, key = path.partition(".")
    return [space.fixed.get(head, {}).get(key, default)]


def characterize_all(configs: list[Any], space: Space, say: Callable[[str], None]) -> float:
    """Characterize ``configs`` and fit the cell and PIM costs the space's designs use (cache hits
    are instant), telling ``say`` about each slow step. Returns the seconds spent."""
    from ...hw.blocks import block_of
    from ...sim.characterize import characterize
    from ..cost.units import cell_factors, pim_lane_costs

    tech = space.fixed.get("tech", "45nm")
    started = time.monotonic()
    for index, config in enumerate(configs, 1):
        name = f"{label(config)} [{index}/{len(configs)}]"
        characterize(config, tech=tech, progress=lambda text, name=name: say(f"characterizing {name}: {text}"))
    families = sorted({(block_of(c).name, flow) for c in configs
                       for flow in values_of(space, "compute.dataflow", Compute().dataflow)})
    for kind, flow in families:
        say(f"fitting the cost of a {kind} cell of an array, dataflow {flow} (small arrays, cached)")
        cell_factors(kind, flow, tech)
    if set(values_of(space, "pim.mode", "none")) - {"none"}:
        for bits in values_of(space, "pim.word_bits", Pim.__dataclass_fields__["word_bits"].default):
            say(f"fitting the cost of a {bits}-bit PIM lane (channels of 1, 2, 4 banks, cached)")
            pim_lane_costs(bits, tech)
    return time.monotonic() - started

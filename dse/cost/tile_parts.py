"""Area of the tile's parts beside the arrays and buffers, for the cost model: the vector unit, the
DMA, the sequencer's logic and its instruction memory.

Logic from the stored Yosys fits of :mod:`peforge.sim.tile_parts` (NAND2-equivalent gates:
``fixed + per_lane x lanes`` for the vector unit, ``fixed + per_byte x bus_bytes`` for the DMA,
one figure for the sequencer) at the technology's NAND2 area; the instruction memory as an SRAM
macro of ``depth x width`` bits (:func:`peforge.sim.macros.price_macros`, the rule the tile's
own figures use). A design's sizes: ``compute.lanes_of_vector_unit`` lanes, the DMA bus of its
full-size tile (:func:`peforge.hw.tile.config.dram_bus_bytes`, at most AXI4's widest), the
tile's default instruction memory depth and the reference tile's word width (stored with the
fits; the width grows slowly with the array's command fields).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Sequence

import numpy as np

from ...hw.tile.config import AXI4_MAX_BUS_BYTES, TileConfig, dram_bus_bytes
from ...sim import tech as tech_presets
from ...sim import tile_parts as measured

__all__ = ["PARTS", "IMEM_DEPTH", "tile_parts_um2", "tile_parts_mm2"]

PARTS = ("vector unit", "DMA", "sequencer", "instruction memory")
IMEM_DEPTH = next(f.default for f in dataclasses.fields(TileConfig) if f.name == "imem_depth")


@functools.lru_cache(maxsize=1)
def _fits() -> dict:
    return measured.load()


@functools.lru_cache(maxsize=4096)
def tile_parts_um2(tech: str, *, lanes: int, bus_bytes: int, imem_depth: int = IMEM_DEPTH,
                   imem_width: int | None = None) -> dict[str, float]:
    """Area (µm²) of each of :data:`PARTS` in ``tech`` for a vector unit of ``lanes`` lanes, a DMA
    bus of ``bus_bytes`` bytes and an instruction memory of ``imem_depth`` words of ``imem_width``
    bits (default: the reference tile's)."""
    from ...sim.macros import MacroMemory, price_macros

    preset = tech_presets.resolve(tech)
    fits = _fits()
    width = imem_width or fits["sequencer"]["imem_width_bits"]
    imem = MacroMemory(name="imem", width=width, depth=imem_depth, read_ports=1, write_ports=1)
    return {"vector unit": preset.area_um2(fits["vector"]["fixed"] + fits["vector"]["per_unit"] * lanes),
            "DMA": preset.area_um2(fits["dma"]["fixed"] + fits["dma"]["per_unit"] * bus_bytes),
            "sequencer": preset.area_um2(fits["sequencer"]["nand2_eq"]),
            "instruction memory": price_macros([imem], preset)[0].area_um2}


def tile_parts_mm2(designs: Sequence[Any]) -> dict[str, np.ndarray]:
    """Each of :data:`PARTS` for every design (mm², at the design's sizes; see the module docstring)."""
    rows = [tile_parts_um2(d.tech, lanes=d.compute.lanes_of_vector_unit,
                           bus_bytes=min(dram_bus_bytes(d), AXI4_MAX_BUS_BYTES)) for d in designs]
    return {part: np.array([r[part] for r in rows], dtype=float) / 1e6 for part in PARTS}

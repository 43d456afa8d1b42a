"""The tile a design runs the integer layer on at the design's own buffer sizes.

:meth:`TileConfig.from_design <peforge.hw.tile.config.TileConfig.from_design>` gives the DMA the
memory's bandwidth per cycle, which small arrays' scratchpads cannot take (a 4 x 4 MAC array's
activation scratchpad moves runs of 4 elements a cycle), or with ``scaled=True`` caps the
scratchpads far below the design's, so the cost model's tiles no longer fit. :func:`design_tile`
keeps the design's ``sram.*_kib`` (split over the arrays, each scratchpad sized by
:meth:`ScratchpadConfig.sized <peforge.hw.tile.spad.ScratchpadConfig.sized>`, the rule
``from_design`` uses) and sets the DMA bus and the vector lanes to what the scratchpads take.
"""

from __future__ import annotations

from typing import Any

from ...hw.systolic import SystolicConfig
from ...hw.tile.config import TileConfig
from ...hw.tile.gemm import spad_rules
from ...hw.tile.spad import ScratchpadConfig

__all__ = ["design_tile"]

OUT_BANKS = 2


def design_tile(design: Any, *, bus_bytes: int = 4, vector_lanes: int = 4, max_m: int = 64, max_k: int = 1024,
                max_n: int = 256, imem_depth: int = 1 << 16) -> TileConfig:
    """The tile of ``design`` (a :class:`~peforge.dse.design.point.DesignPoint`) with its own
    buffer sizes.

    Parameters
    ----------
    design : DesignPoint
    bus_bytes : int
        The DMA's bus (bytes per beat).
    vector_lanes : int
        The vector unit's lanes.
    max_m, max_k, max_n : int
        The largest GEMM of one command (the array's limits).
    imem_depth : int
        Instructions the sequencer holds.
    """
    c, s = design.compute, design.sram
    array = SystolicConfig(rows=c.rows, cols=c.cols, pe=c.pe, pe_config=c.pe_config, dataflow=c.dataflow,
                           max_m=max_m, max_k=max_k, max_n=max_n)
    rules = spad_rules(array)
    rules["out"] = {**rules["out"], "banks": OUT_BANKS}

    def depth(name: str, kib: float) -> int:
        return ScratchpadConfig.sized(kib / c.arrays, **rules[name]).depth

    return TileConfig(array=array, arrays=c.arrays, act_depth=depth("act", s.activation_kib),
                      weight_depth=depth("weight", s.weight_kib), out_depth=depth("out", s.output_kib),
                      out_banks=OUT_BANKS, vector_lanes=vector_lanes, bus_bytes=bus_bytes, imem_depth=imem_depth)

"""The tiny Llama layer on the accelerator tile: the compiled program's cycles per operator beside
the cost model's, prefill and one decode step.

    python benchmarks/tile_cycles.py [--design tests/designs/tile-tiny.toml] [--arrays N]
        [--dataflow ws|os] [--seq 16] [--read-latency 8] [--scaled]

The cost model prices the design with its characterized unit costs (the PE's characterization is
cached after the first run) and chooses each GEMM's mapping; the compiler follows those mappings.
The tile is the design's at its own buffer sizes (``peforge.dse.tile.design_tile``: a 4-byte DMA
bus and 4 vector lanes, what small scratchpads take per cycle), or with ``--scaled``
``TileConfig.from_design(scaled=True)``. The DMA's memory model: ``--read-latency`` cycles, one
beat per cycle. Columns: the tile's array, vector and DMA busy cycles and its sequencer time per
operator (``peforge.dse.tile.predict``), the cost model's time x clock, and their ratio.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from peforge.dse.cost.api import evaluate, load_design, prepare
from peforge.dse.cost.model import CostModel
from peforge.dse.cost.units import unit_costs
from peforge.dse.tile.design_tile import design_tile
from peforge.dse.tile.intlayer import IntLayer
from peforge.dse.tile.mapping import cost_model_mappings
from peforge.dse.tile.predict import cost_model_cycles, cycle_table, predict_layer
from peforge.hw.tile.config import TileConfig
from peforge.hw.tile.dma import MemoryModel

DEFAULT = Path(__file__).resolve().parent.parent / "tests" / "designs" / "tile-tiny.toml"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--design", type=Path, default=DEFAULT)
    parser.add_argument("--arrays", type=int, default=None, help="override compute.arrays")
    parser.add_argument("--dataflow", choices=("ws", "os"), default=None, help="override compute.dataflow")
    parser.add_argument("--seq", type=int, default=16, help="prefill tokens (default 16)")
    parser.add_argument("--read-latency", type=int, default=8, help="DRAM read latency, cycles (default 8)")
    parser.add_argument("--scaled", action="store_true", help="TileConfig.from_design(scaled=True)")
    args = parser.parse_args()
    design = load_design(args.design)
    compute = {k: v for k, v in (("arrays", args.arrays), ("dataflow", args.dataflow)) if v is not None}
    design = dataclasses.replace(design, compute=dataclasses.replace(design.compute, **compute))
    workload = prepare("tiny-llama", batch=1, seq=args.seq, gen=2, quant="w8a8kv8")
    mappings = cost_model_mappings(CostModel([design], [unit_costs(design)]), workload)
    tile = (dataclasses.replace(TileConfig.from_design(design, scaled=True), imem_depth=1 << 16) if args.scaled
            else design_tile(design))
    memory = MemoryModel(read_latency=args.read_latency, period=1)
    predictions = predict_layer(IntLayer(), tile, mappings, seq=args.seq, memory=memory)
    model = cost_model_cycles(evaluate(design, workload), design.compute.clock_mhz)
    print(f"{design.name}: {design.compute.arrays} x {design.compute.rows}x{design.compute.cols} "
          f"{design.compute.pe} {design.compute.dataflow}, tiny-llama prefill {args.seq} + 1 decode step; DMA bus "
          f"{tile.bus_bytes} B, read latency {args.read_latency} cycles; scratchpads per slice "
          + ", ".join(f"{name} {spad.elements}" for name, spad in tile.spads.items()))
    print(cycle_table(predictions, model))
    return 0


if __name__ == "__main__":
    sys.exit(main())

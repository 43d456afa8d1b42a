"""The tiny Llama layer on the accelerator tile: the compiled program's cycles per operator beside
the cost model's, prefill and one decode step.

    python benchmarks/tile_cycles.py [--design tests/designs/tile-tiny.toml] [--arrays N]
        [--dataflow ws|os] [--seq 16] [--read-latency 8] [--scaled] [--tile-commands]
    python benchmarks/tile_cycles.py --matrix [--seq 16] [--read-latency 8]

The cost model prices the design with its characterized unit costs (the PE's characterization is
cached after the first run) and chooses each GEMM's mapping; the compiler follows those mappings.
The tile is the design's at its own buffer sizes (``peforge.dse.cost.gemm_tiles.design_tile``:
``sram.*_kib`` split over the arrays; the DMA bus and vector lanes narrowed to what these small
scratchpads take per cycle), or with ``--scaled`` ``TileConfig.from_design(scaled=True)``. The
DMA's memory model: ``--read-latency`` cycles, a beat per :func:`tile_memory` period (the
design's bandwidth). Columns: the tile's array,
vector and DMA busy cycles and its sequencer time per operator (``peforge.dse.tile.predict``), the
cost model's time x clock, and their ratio.

``--matrix``: for MAC, bit-serial and mixed PEs, ws and os, one and two arrays, at the design's
bandwidth and at a tenth of it, each operator's array phase (the busiest slice's GEMM commands),
vector phase (the vector unit's commands: elementwise operators and GEMM epilogues), end-to-end
cycles (``total``: the sequencer's time on its instructions) and DRAM bytes on the tile beside
the cost model's (``CostModel(tile_commands=True)``, the DMA's memory latencies given) and the
deviation (model - tile) / tile, then the layer's totals. Both sides see one memory: the tile's
DMA gets a beat every ``dma_period(bus, bandwidth / clock)`` cycles, the model the same rate.
The model's operator is its own program's timeline (:mod:`peforge.dse.tile.operator_program`),
so the layer's totals agree but for the program's start and done latencies; an operator's
``total`` differs where the tile charges the wait for the previous operator's last store to the
next operator's first instruction (the model: to the operator whose store it is).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from peforge.dse.cost.api import load_design, prepare
from peforge.dse.cost.gemm_tiles import design_tile, dma_period
from peforge.dse.cost.model import CostModel
from peforge.dse.cost.units import unit_costs
from peforge.dse.tile.intlayer import IntLayer
from peforge.dse.tile.mapping import cost_model_mappings
from peforge.dse.tile.predict import (cost_model_bytes, cost_model_compute, cost_model_cycles, cycle_table,
                                      predict_layer)
from peforge.hw.tile.config import TileConfig
from peforge.hw.tile.dma import MemoryModel

DEFAULT = Path(__file__).resolve().parent.parent / "tests" / "designs" / "tile-tiny.toml"


PES = {"mac": (), "bitserial": (("lanes", 4), ("k", 2)), "mixed": ()}


def _dev(mine: float, theirs: float) -> str:
    return f"{(mine - theirs) / theirs:+8.1%}" if theirs else f"{'':8}"


def tile_memory(tile: TileConfig, costs, clock_mhz: float, read_latency: int) -> MemoryModel:
    """The DMA's memory model at the design's bandwidth (``costs.memory_gb_per_s``): one beat per
    :func:`~peforge.dse.cost.gemm_tiles.dma_period` cycles, as the cost model's tile commands see it."""
    period = int(dma_period(tile.bus_bytes, costs.memory_gb_per_s * 1e3 / clock_mhz))
    return MemoryModel(read_latency=read_latency, period=period)


def matrix(base, seq: int, read_latency: int) -> None:
    """The configuration matrix: per operator the array and vector phases, the end-to-end cycles
    and the DRAM bytes, tile against model."""
    workload = prepare("tiny-llama", batch=1, seq=seq, gen=2, quant="w8a8kv8")
    layer = IntLayer()
    for pe, params in PES.items():
        for dataflow in ("ws", "os"):
            for arrays in (1, 2):
                for scale in (1.0, 0.1):
                    compute = dataclasses.replace(base.compute, pe=pe, pe_params=params, dataflow=dataflow,
                                                  arrays=arrays)
                    design = dataclasses.replace(base, compute=compute)
                    costs = unit_costs(design)
                    costs = dataclasses.replace(costs, memory_gb_per_s=costs.memory_gb_per_s * scale)
                    model = CostModel([design], [costs], tile_commands=True,
                                      tile_memory=MemoryModel(read_latency=read_latency))
                    try:
                        tile = design_tile(design)
                        memory = tile_memory(tile, costs, design.compute.clock_mhz, read_latency)
                        head = (f"{pe} {dataflow} x{arrays}, DRAM {costs.memory_gb_per_s:.2f} GB/s (DMA bus "
                                f"{tile.bus_bytes} B, {memory.period} cycle(s) per beat)")
                        predictions = predict_layer(layer, tile, cost_model_mappings(model, workload), seq=seq,
                                                    memory=memory)
                    except ValueError as error:
                        print(f"{pe} {dataflow} x{arrays}: the tile refuses it: {error}\n")
                        continue
                    mine = {part: cost_model_compute(model, workload, part) for part in ("array", "vector")}
                    evaluation = model.evaluate(workload)
                    times = cost_model_cycles(evaluation, design.compute.clock_mhz)
                    moved = cost_model_bytes(evaluation)
                    print(head)
                    print(f"  {'phase':8} {'operator':22} {'part':6} {'tile':>8} {'model':>9} {'dev':>8}")
                    for phase, p in predictions.items():
                        for name, o in p.operators.items():
                            for unit, work in (("array", o.array_work), ("vector", o.vector_work),
                                               ("total", o.total), ("bytes", o.dma_bytes)):
                                m = (mine[unit][phase].get(name, 0.0) if unit in mine else
                                     (times if unit == "total" else moved)[phase].get(name, 0.0))
                                if work or m:
                                    print(f"  {phase:8} {name:22} {unit:6} {work:8d} {m:9.0f} {_dev(m, work)}")
                        total = sum(times[phase].get(name, 0.0) for name in p.operators)
                        print(f"  {phase:8} {'(layer, end to end)':22} {'total':6} {p.cycles:8d} {total:9.0f} "
                              f"{_dev(total, p.cycles)}")
                    print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--design", type=Path, default=DEFAULT)
    parser.add_argument("--arrays", type=int, default=None, help="override compute.arrays")
    parser.add_argument("--dataflow", choices=("ws", "os"), default=None, help="override compute.dataflow")
    parser.add_argument("--seq", type=int, default=16, help="prefill tokens (default 16)")
    parser.add_argument("--read-latency", type=int, default=8, help="DRAM read latency, cycles (default 8)")
    parser.add_argument("--scaled", action="store_true", help="TileConfig.from_design(scaled=True)")
    parser.add_argument("--tile-commands", action="store_true",
                        help="price with CostModel(tile_commands=True): the arrays' and the vector unit's commands "
                             "as the tile runs them")
    parser.add_argument("--matrix", action="store_true", help="the configuration matrix (PEs, dataflows, arrays, "
                                                              "bandwidths)")
    args = parser.parse_args()
    design = load_design(args.design)
    if args.matrix:
        matrix(design, args.seq, args.read_latency)
        return 0
    compute = {k: v for k, v in (("arrays", args.arrays), ("dataflow", args.dataflow)) if v is not None}
    design = dataclasses.replace(design, compute=dataclasses.replace(design.compute, **compute))
    workload = prepare("tiny-llama", batch=1, seq=args.seq, gen=2, quant="w8a8kv8")
    costs = unit_costs(design)
    cost_model = CostModel([design], [costs], tile_commands=args.tile_commands,
                           tile_memory=MemoryModel(read_latency=args.read_latency))
    mappings = cost_model_mappings(cost_model, workload)
    tile = (dataclasses.replace(TileConfig.from_design(design, scaled=True), imem_depth=1 << 16) if args.scaled
            else design_tile(design))
    memory = tile_memory(tile, costs, design.compute.clock_mhz, args.read_latency)
    predictions = predict_layer(IntLayer(), tile, mappings, seq=args.seq, memory=memory)
    model = cost_model_cycles(cost_model.evaluate(workload), design.compute.clock_mhz)
    print(f"{design.name}: {design.compute.arrays} x {design.compute.rows}x{design.compute.cols} "
          f"{design.compute.pe} {design.compute.dataflow}, tiny-llama prefill {args.seq} + 1 decode step; DMA bus "
          f"{tile.bus_bytes} B, {memory.period} cycle(s) per beat, read latency {args.read_latency} cycles; "
          f"scratchpads per slice "
          + ", ".join(f"{name} {spad.elements}" for name, spad in tile.spads.items()))
    print(cycle_table(predictions, model))
    return 0


if __name__ == "__main__":
    sys.exit(main())

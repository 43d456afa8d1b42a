"""Area and energy of the whole accelerator tile, by part, beside the cost model's per-component sum.

    python benchmarks/tile_figures.py [--design tests/designs/tile-tiny.toml] [--no-run]

The tile is the design's at its own buffer sizes (:func:`peforge.dse.tile.design_tile.design_tile`).
Area: Yosys on the tile's Verilog with every RTL memory cut out and priced as an SRAM macro of its
own size (:mod:`peforge.sim.macros`; the technology preset's sourced SRAM model), the rest as
standard cells. Energy: the compiled decode step of the tiny Llama layer (after a 16-token prefill)
run on the tile in the Amaranth simulator, every memory access and logic toggle counted (program
loading through AXI4-Lite included). The cost model's figures for the same design: its area parts
(:meth:`CostModel.area_parts_mm2`) and its energy of the same operators of the decode step.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from peforge.dse.cost import mapper
from peforge.dse.cost.model import CostModel
from peforge.dse.cost.tile_parts import IMEM_DEPTH, PARTS, tile_parts_um2
from peforge.dse.cost.units import unit_costs
from peforge.dse.design.point import load_design
from peforge.dse.tile.compiler import compile_layer
from peforge.dse.tile.design_tile import design_tile
from peforge.dse.tile.intlayer import IntLayer, KVCache
from peforge.dse.tile.mapping import OperatorMapping
from peforge.hw.tile.config import AXI4_MAX_BUS_BYTES, dram_bus_bytes
from peforge.hw.tile.dma import MemoryModel
from peforge.hw.tile.tile import AcceleratorTile
from peforge.sim import tile_run
from peforge.sim.macros import tile_figures

DEFAULT = Path(__file__).resolve().parent.parent / "tests" / "designs" / "tile-tiny.toml"
MEMORY = MemoryModel(read_latency=8, write_latency=4)
PREFILL = 16
GEMMS = ("q_proj", "k_proj", "v_proj", "attn.score", "attn.context", "o_proj", "mlp.gate_proj", "mlp.up_proj",
         "mlp.down_proj")


def part_of(memory_name: str) -> str:
    """The component a memory belongs to, from its hierarchical name."""
    for part in ("act", "weight", "out", "meta"):
        if re.search(rf"(^|\.){part}(\.|$)", memory_name):
            return f"{part} scratchpads"
    if "imem" in memory_name or "sequencer" in memory_name:
        return "instruction memory"
    return "other memories (" + memory_name.split(".")[-1] + ")"


def decode_run(tile, layer: IntLayer):
    """The compiled decode step after a ``PREFILL``-token prefill, its DRAM image and the golden."""
    arrays = tile.arrays
    spread = OperatorMapping(candidate=mapper.CANDIDATES.index((True, "N")), arrays=arrays)
    mappings = {name: OperatorMapping() if name.startswith("attn") else spread for name in GEMMS}
    x = layer.embed(np.random.default_rng(11).integers(0, layer.config.model.vocab_size, PREFILL + 1))
    golden = layer.execute(x[:PREFILL])
    cache = KVCache(k=golden["k_cache"], v_t=golden["v_cache_t"], length=PREFILL)
    compiled = compile_layer(layer, 1, PREFILL, tile, mappings)
    return compiled, compiled.image(x[PREFILL:], cache), layer.execute(x[PREFILL:], cache)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--design", type=Path, default=DEFAULT)
    parser.add_argument("--no-run", action="store_true", help="area only (no simulated decode step)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="synthesis cache folder (default: peforge's)")
    args = parser.parse_args(argv)
    design = load_design(args.design)
    tile = design_tile(design, max_m=32, max_k=256, max_n=64, imem_depth=2048)
    activity = None
    if not args.no_run:
        layer = IntLayer()
        compiled, image, expected = decode_run(tile, layer)
        dram = bytearray(image)
        started = time.perf_counter()
        out = tile_run.run_tile(tile, list(compiled.program), dram, MEMORY, timeout=400_000, activity=True)
        for name in expected:
            if name in compiled.symbols and not np.array_equal(compiled.read(dram, name), expected[name]):
                print(f"tile_figures: the tile's {name} differs from the golden layer", file=sys.stderr)
                return 1
        activity = out["activity"]
        print(f"decode step on the tile: {out['measured']} cycles start to done, {activity.cycles} simulated "
              f"(program loading included), {time.perf_counter() - started:.0f} s in the Amaranth simulator")
    started = time.perf_counter()
    figures = tile_figures(AcceleratorTile(tile), design.tech, activity, cache_dir=args.cache_dir)
    print(f"synthesis with memories as macros: {time.perf_counter() - started:.0f} s; logic "
          f"{figures.synth.logic.nand2_eq:,.0f} NAND2 eq, {figures.synth.logic.flops:,} flops, "
          f"{len(figures.macros)} macros")

    area = defaultdict(float)
    energy = defaultdict(float)
    for cost in figures.macros:
        area[part_of(cost.memory.name)] += cost.area_um2 / 1e6
        if figures.macro_pj is not None:
            energy[part_of(cost.memory.name)] += figures.macro_pj[cost.memory.name]
    print(f"\n{design.name} tile ({design.tech}), area by part")
    print(f"  {'logic (arrays, vector unit, DMA, sequencer, registers)':58} {figures.logic_mm2:10.5f} mm2")
    for part in sorted(area):
        print(f"  {part:58} {area[part]:10.5f} mm2")
    print(f"  {'total':58} {figures.total_mm2:10.5f} mm2")

    model = CostModel([design], [unit_costs(design)])
    parts = {name: float(v[0]) for name, v in model.area_parts_mm2().items() if float(v[0])}
    print("\ncost model's per-component area (the design's sizes: "
          f"{design.compute.lanes_of_vector_unit} lanes, a {min(dram_bus_bytes(design), AXI4_MAX_BUS_BYTES)}-byte bus, "
          f"{IMEM_DEPTH} instructions)")
    for name, value in parts.items():
        print(f"  {name:58} {value:10.5f} mm2")
    total = sum(parts.values())
    print(f"  {'total':58} {total:10.5f} mm2   tile / model = {figures.total_mm2 / total:.2f}")
    # the same closed forms at the sizes of the tile measured here
    own = tile_parts_um2(design.tech, lanes=tile.vector_lanes, bus_bytes=tile.bus_bytes, imem_depth=tile.imem_depth,
                         imem_width=tile.sequencer.width)
    at_tile = total + sum(own.values()) / 1e6 - sum(parts.get(name, 0.0) for name in PARTS)
    label = (f"total at the tile's own sizes ({tile.vector_lanes} lanes, {tile.bus_bytes}-byte bus, "
             f"{tile.imem_depth} x {tile.sequencer.width} imem)")
    print(f"  {label:58} {at_tile:10.5f} mm2   tile / model = {figures.total_mm2 / at_tile:.2f}")
    if figures.logic_pj is not None:
        print(f"\nenergy of the decode step run by part ({figures.cycles} cycles)")
        print(f"  {'logic':58} {figures.logic_pj / 1e3:10.2f} nJ")
        for part in sorted(energy):
            print(f"  {part:58} {energy[part] / 1e3:10.2f} nJ")
        print(f"  {'total':58} {figures.total_pj / 1e3:10.2f} nJ")
    return 0


if __name__ == "__main__":
    sys.exit(main())

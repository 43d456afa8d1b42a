"""Wall time of the tile testbench on Verilator: the tiny Llama layer (a prefill of 16 tokens, one
decode step) on the simulable tile of the testbench's default design (one 4 x 4 INT8 MAC array,
weight-stationary, one LPDDR5 channel: tests/cocotb/test_tile_layer.py), split into compiling the
layer, exporting the Verilog, building it and running it. Target: build + run <= 120 s on 2 cores.

Usage: python benchmarks/tile_verilator_time.py [--full-opt] [--build-dir DIR]
(``--full-opt``: Verilator's C++ at -O2 instead of -O0: a slower build, a faster run.) On a loaded
machine the wall times grow; the CPU seconds of the build and the simulator do not.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from peforge.dse.design.point import design_from_dict
from peforge.dse.tile.bench import layer_tile, plan_layer, run_plan, tile_mappings, uncharacterized_costs
from peforge.sim.tile_layer import export_tile
from peforge.sim.tools import missing_simulator

DESIGN = {"name": "tile-bench", "tech": "7nm", "quant": "w8a8kv8",
          "compute": {"pe": "mac", "rows": 4, "cols": 4, "dataflow": "ws", "arrays": 1, "clock_mhz": 500.0,
                      "vector_lanes": 4, "pe_params": {"a_bits": 8, "w_bits": 8}},
          "sram": {"weight_kib": 8, "activation_kib": 8, "output_kib": 8},
          "memory": {"technology": "LPDDR5", "units": 1}}
TARGET_S = 120.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full-opt", action="store_true", help="build the Verilated model at -O2")
    parser.add_argument("--build-dir", type=Path, default=None, help="default: a temporary folder")
    args = parser.parse_args()
    why = missing_simulator("verilator")
    if why:
        print(f"tile_verilator_time: {why}")
        return 2
    design = design_from_dict(DESIGN)
    t0 = time.perf_counter()
    plan = plan_layer(design, layer_tile(design),
                      tile_mappings(design, uncharacterized_costs(design)))
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="peforge-tile-bench-") as tmp:
        build = args.build_dir or Path(tmp)
        source = export_tile(plan.tile, build / "rtl")
        t2 = time.perf_counter()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        report = run_plan(plan, source, "verilator", build, quick_build=not args.full_opt)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        t3 = time.perf_counter()
        built = (build / "build-verilator.log").stat().st_mtime - source.stat().st_mtime
    run = t3 - t2
    cycles = sum(p.measured for p in report.phases)
    instructions = sum(len(p.words) for p in plan.phases)
    print(f"tile: {plan.tile.arrays} x {plan.tile.array.rows} x {plan.tile.array.cols} {plan.tile.array.pe}, "
          f"{plan.tile.bus_bytes}-byte bus, memory period {plan.memory.period}; programs of {instructions} "
          f"instructions, {cycles} cycles")
    print(f"compile layer {t1 - t0:6.1f} s")
    print(f"export        {t2 - t1:6.1f} s")
    print(f"build         {built:6.1f} s  (Verilator, C++ at {'-O2' if args.full_opt else '-O0'})")
    print(f"run           {run - built:6.1f} s  ({cycles / max(run - built, 1e-9):.0f} cycles/s)")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    print(f"build + run   {run:6.1f} s  (target <= {TARGET_S:.0f} s: {'met' if run <= TARGET_S else 'missed'}); "
          f"{cpu:.1f} s of CPU in the build and the simulator (what an idle machine's wall time approaches)")
    print(report.summary())
    return 0 if report.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())

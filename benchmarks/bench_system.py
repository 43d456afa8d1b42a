"""Speed of pricing systems of chips (issue 15, "Speed").

Prints
1. the median time to price one 16-chip system on Llama-2-70B (prefill of 2048 tokens + 256 decode
   steps, batch 16, every layer) with :func:`peforge.dse.cost.system.system_metrics`, the chip
   the shipped datacenter design (its characterization cached), for two splits (TP 16; TP 8 x PP 2
   with 4 micro-batches), decode attention priced every step (``stride=1``, what ``evaluate``
   does) and every 16th (``stride=16``, what ``evaluate_many`` does): wall time and CPU time of
   this process (the machine may be shared). The issue's target (<= 2 ms) is judged at stride 16,
   how a search prices a system; stride 1 is shown beside it, not held to it. Every call prices
   the system afresh (a new cost model, the mapper run again); only the design-independent row
   tables of the workload and of each split's chip workload are built once and reused, as they are
   over a search;
2. systems per second through ``evaluate_many`` (``stride=16``) on varied systems: the chip's
   arrays, buffers and memory varied, 1 to 16 chips split every way tp x pp allows, micro-batches
   1, 4 or 8 (target >= 5,000/s).

Run: python benchmarks/bench_system.py [--systems N] [--repeats N]
Uses the user's characterization cache (``~/.cache/peforge``); a cold one characterizes the
datacenter design's BF16 PE first (minutes).
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import sys
import time
from pathlib import Path

from peforge.dse.cost.api import evaluate_many, load_design, prepare
from peforge.dse.cost.system import system_metrics
from peforge.dse.cost.units import unit_costs
from peforge.dse.design.point import System

DESIGNS = Path(__file__).resolve().parent.parent / "dse" / "designs"
WORKLOAD = dict(batch=16, seq=2048, gen=257)  # the prefill gives the first token, then 256 decode steps


def median_ms(call, repeats: int) -> tuple[float, float]:
    """Median wall and CPU time of ``call`` (ms)."""
    wall, cpu = [], []
    call()
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        call()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return statistics.median(wall) * 1e3, statistics.median(cpu) * 1e3


def bench_one(repeats: int) -> None:
    chip = load_design(DESIGNS / "datacenter.toml")
    workload = prepare("llama-2-70b", **WORKLOAD, quant=chip.run_quant())
    cost = unit_costs(chip)
    print(f"1. one 16-chip system, {chip.name} chips ({chip.compute.arrays} x {chip.compute.rows}x{chip.compute.cols}, "
          f"{chip.memory.units} x {chip.memory.technology}) over NVLink 4, Llama-2-70B BF16, prefill "
          f"{WORKLOAD['seq']} + {WORKLOAD['gen'] - 1} decode steps, batch {WORKLOAD['batch']}")
    for system in (System(chips=16, tp=16), System(chips=16, tp=8, pp=2, micro_batches=4)):
        design = dataclasses.replace(chip, system=system)
        for stride in (1, 16):
            wall, cpu = median_ms(lambda: system_metrics([design], [cost], workload, stride=stride), repeats)
            m = system_metrics([design], [cost], workload, stride=stride)
            target = (f"the target, <= 2 ms: {'met' if cpu <= 2 else 'NOT met'} in CPU time" if stride == 16
                      else f"every step, as evaluate does: {'within' if cpu <= 2 else 'beyond'} 2 ms, not the target")
            print(f"   tp {system.tp} x pp {system.pp} (m {system.micro_batches}), stride {stride:>2}: "
                  f"median {wall:.2f} ms wall, {cpu:.2f} ms CPU ({target}); TTFT {m['ttft_s'][0] * 1e3:.1f} ms, "
                  f"TPOT {m['tpot_s'][0] * 1e3:.2f} ms, comm {m['comm_share'][0] * 100:.1f} %")


def varied_systems(count: int, seed: int = 15) -> list:
    """``count`` systems of datacenter-like chips: arrays, buffers, memory units and the split varied
    (PE parameters as shipped: no new characterization)."""
    rng = random.Random(seed)
    base = load_design(DESIGNS / "datacenter.toml")
    splits = [(c, tp) for c in (1, 2, 4, 8, 16) for tp in (1, 2, 4, 8, 16) if c % tp == 0]
    out = []
    for i in range(count):
        chips, tp = rng.choice(splits)
        compute = dataclasses.replace(base.compute, rows=rng.choice((64, 128, 256)), cols=rng.choice((64, 128, 256)),
                                      arrays=rng.choice((1, 2, 4, 8)))
        sram = dataclasses.replace(base.sram, weight_kib=rng.choice((8192, 16384, 32768)))
        memory = dataclasses.replace(base.memory, units=rng.choice((4, 6, 8)))
        system = System(chips=chips, tp=tp, pp=chips // tp, micro_batches=rng.choice((1, 4, 8)))
        out.append(dataclasses.replace(base, name=f"sys-{i}", compute=compute, sram=sram, memory=memory,
                                       system=system))
    return out


def bench_many(count: int) -> None:
    designs = varied_systems(count)
    workload = prepare("llama-2-70b", **WORKLOAD, quant=designs[0].run_quant())
    evaluate_many(designs[:200], workload)  # warm: characterization read, chip workloads built
    start, cpu = time.perf_counter(), time.process_time()
    frame = evaluate_many(designs, workload)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    ok = frame["error"] == ""
    print(f"2. evaluate_many(stride=16): {count} systems (1-16 chips, every tp x pp, datacenter chips varied) on "
          f"Llama-2-70B: {wall:.2f} s wall, {cpu:.2f} s CPU = {count / wall:,.0f} systems/s wall, "
          f"{count / cpu:,.0f}/s CPU (target >= 5,000/s: {'met' if count / cpu >= 5000 else 'NOT met'} in CPU time); "
          f"{ok.sum()} run, {(~ok).sum()} rejected (capacity per chip or split)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--systems", type=int, default=10000, help="systems for evaluate_many")
    parser.add_argument("--repeats", type=int, default=50, help="timed calls per single-system case")
    args = parser.parse_args()
    bench_one(args.repeats)
    bench_many(args.systems)
    return 0


if __name__ == "__main__":
    sys.exit(main())

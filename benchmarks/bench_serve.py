"""Speed and fidelity of the serving simulator (issue 16, "fast").

Prints, for 1,000 requests of the shipped conversation trace on Llama-2-7B:
1. the warm-up (the trace's operator tables, design-independent, once per model and trace);
2. per design (the shipped datacenter and edge designs, PE characterization cached): the time to
   price its tables (:class:`peforge.dse.serve.cost.PoolCost`, once per design) and the median
   time of one simulation of the 1,000 requests at three arrival rates, wall clock and CPU time
   (target <= 100 ms; on a shared machine the CPU time is the one that does not count the others);
3. the tables' error against the exact cost model: decode steps at batches between the grid's
   points and contexts between the priced ones, prefills at lengths the trace does not have.

Run: python benchmarks/bench_serve.py [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from peforge.dse.cost.api import evaluate, prepare
from peforge.dse.design.point import design_named
from peforge.dse.serve.cost import PoolCost
from peforge.dse.serve.sim import simulate
from peforge.dse.serve.trace import read_trace, shipped_trace

MODEL = "llama-2-7b"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    trace = read_trace(shipped_trace("conversation"))
    top = int((trace.prompt + trace.output - 1).max())
    start = time.perf_counter()
    first = PoolCost(design_named("datacenter"), MODEL, prompt_lengths=trace.prompt, max_context=top)
    print(f"{len(trace)} requests, {len(np.unique(trace.prompt))} prompt lengths, contexts up to {top}")
    print(f"warm-up (operator tables of every length, and the first design): {time.perf_counter() - start:.2f} s")
    for name in ("datacenter", "edge"):
        design = design_named(name)
        builds = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            pool = PoolCost(design, MODEL, prompt_lengths=trace.prompt, max_context=top)
            builds.append(time.perf_counter() - t)
        print(f"\n{name}: KV {pool.kv_blocks} blocks of 16 tokens, decode grid up to batch {pool.max_batch}")
        print(f"  price its tables: {1e3 * statistics.median(builds):.0f} ms (median of {args.repeats})")
        for rate in (0.1, 0.5, 2.0):
            runs, cpu = [], []
            for _ in range(args.repeats):
                t, c = time.perf_counter(), time.process_time()
                result = simulate(pool, trace.at_rate(rate))
                runs.append(time.perf_counter() - t)
                cpu.append(time.process_time() - c)
            print(f"  simulate 1,000 requests at {rate:g} req/s: {1e3 * statistics.median(runs):.0f} ms "
                  f"({1e3 * statistics.median(cpu):.0f} ms of CPU) "
                  f"({len(result.series['t_s'])} steps recorded, peak batch {result.peak_running}, "
                  f"{result.preemptions} preemptions)")
        errors = []
        for batch in (3, 5, 12):
            for context in (37, 511, 1000, 2000):
                workload = prepare(MODEL, batch=batch, seq=context, gen=2, quant=design.run_quant())
                try:
                    exact = evaluate(design, workload, phases=("decode",), breakdown=False).metrics["tpot_s"]
                except ValueError:
                    continue  # the batch does not fit this design's memory
                errors.append(pool.decode_step_seconds(batch, context) / exact - 1)
        prefill = []
        for seq in (77, 250, 900, 3000):
            workload = prepare(MODEL, batch=1, seq=seq, gen=1, quant=design.run_quant(), phases=("prefill",))
            exact = evaluate(design, workload, phases=("prefill",), breakdown=False).metrics["ttft_s"]
            prefill.append(pool.prefill_seconds(seq) / exact - 1)
        print(f"  table error vs the cost model: decode max {100 * max(map(abs, errors)):.2f} % over "
              f"{len(errors)} (batch, context) points; prefill off the priced lengths max "
              f"{100 * max(map(abs, prefill)):.2f} %")


if __name__ == "__main__":
    main()

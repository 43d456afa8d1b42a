"""Search quality and speed of `peforge sweep`.

1. Quality: on a space small enough to enumerate (4,608 points), every point is evaluated to
   get the exact Pareto front. NSGA-II, TPE and random search then get 10 % of that many
   evaluations each, over several seeds; the hypervolume each reaches is printed as a
   fraction of the exact front's (target: >= 0.95, and above random).
2. Throughput: 1,000 trials of the default space (edge) on Llama-2-7B decode, warm
   characterization cache, journal storage, in one process and with two worker processes
   (target: <= 60 s; two processes >= 1.6x the trials per second).

Run: python benchmarks/bench_search.py [--seeds 5] [--skip-quality] [--skip-throughput]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna

from peforge.dse.search import sweep as search
from peforge.dse.cost.api import evaluate
from peforge.dse.search.pareto import front_mask, hypervolume
from peforge.dse.search.space import load_space, parse_space
from peforge.models.quant import DEFAULT_SCHEME

ENUMERABLE = """
description = "benchmark: small enough to evaluate every point"
[fixed]
tech = "7nm"
[fixed.memory]
technology = "LPDDR5"
[fixed.sram]
activation_kib = 256
output_kib = 128

[param."compute.pe"]
type = "categorical"
choices = ["mac", "bitserial"]
[param.lanes]
path = "compute.pe_params.lanes"
type = "fixed"
value = 8
when = { "compute.pe" = "bitserial" }

[param."compute.rows"]
type = "int"
low = 8
high = 64
scale = "pow2"
[param."compute.cols"]
type = "int"
low = 8
high = 64
scale = "pow2"
[param."compute.arrays"]
type = "categorical"
choices = [1, 2, 4]
[param."compute.dataflow"]
type = "categorical"
choices = ["ws", "os"]
[param."compute.clock_mhz"]
type = "categorical"
choices = [400.0, 800.0]
[param."memory.units"]
type = "categorical"
choices = [1, 2, 4]
[param."sram.weight_kib"]
type = "categorical"
choices = [256, 1024]
[param.batch]
type = "categorical"
choices = [1, 4]

[objectives]
tokens_per_s = "maximize"
j_per_token = "minimize"
area_mm2 = "minimize"
"""
WORKLOAD = search.WorkloadSpec(model="llama-2-7b", seq=256, gen=64, quant="w4a8kv8")
SAMPLERS = ("nsga2", "tpe", "random")


def exact(space) -> tuple[np.ndarray, dict[str, list[float]]]:
    """Objective values of every point of ``space`` (rows), by assignment."""
    values = []
    for assignment in space.points():
        design = space.design(assignment)
        metrics = evaluate(design, WORKLOAD.at_batch(design.batch), phases=WORKLOAD.phases, breakdown=False).metrics
        values.append([metrics[o.metric] for o in space.objectives])
    return np.array(values)


def search_values(space, sampler: str, seed: int, budget: int) -> np.ndarray:
    """Objective values of the completed trials of one in-memory run."""
    study = optuna.create_study(directions=space.directions, sampler=search.make_sampler(sampler, seed, space))
    objective = search.Objective(space, WORKLOAD)
    for _ in range(budget):
        trial = study.ask()
        objective.run(study, trial)
    return np.array([t.values for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))])


def quality(seeds: int) -> None:
    space = parse_space(ENUMERABLE, where="benchmark space", name="bench")
    started = time.monotonic()
    everything = exact(space)
    directions = space.directions
    front = everything[front_mask(everything, directions)]
    # Reference: just beyond the exact front's worst value in each objective (10 % of the
    # front's span), so the measure looks at the front, not at the empty space far from it.
    maximize = np.array(directions) == "maximize"
    span = front.max(axis=0) - front.min(axis=0)
    worst = np.where(maximize, front.min(axis=0) - 0.1 * span, front.max(axis=0) + 0.1 * span)
    best = hypervolume(front, directions, worst)
    budget = len(everything) // 10
    print(f"enumerable space: {len(everything)} points, exact front {len(front)} points "
          f"({time.monotonic() - started:.1f} s to evaluate all); budget {budget} evaluations (10 %), {seeds} seeds")
    for sampler in SAMPLERS:
        fractions, times = [], []
        for seed in range(seeds):
            t0 = time.monotonic()
            values = search_values(space, sampler, seed, budget)
            times.append(time.monotonic() - t0)
            fractions.append(hypervolume(values, directions, worst) / best)
        print(f"  {sampler:7s} hypervolume / exact: mean {statistics.mean(fractions):.3f}, "
              f"min {min(fractions):.3f}, max {max(fractions):.3f}   "
              f"({statistics.mean(times):.1f} s per run)")


def throughput(trials: int) -> None:
    space = load_space("edge")
    workload = search.WorkloadSpec(model="llama-2-7b", seq=space.workload.get("seq", 512),
                                   gen=space.workload.get("gen", 128), quant=space.workload.get("quant", DEFAULT_SCHEME),
                                   phases=("decode",))
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        for jobs in (1, 2):
            sweep = search.Sweep(space=space, workload=workload, trials=trials, out=Path(tmp) / f"j{jobs}",
                                 study=f"j{jobs}", n_jobs=jobs, seed=0)
            search.run(sweep, progress=False)  # characterization is warm after the first
            t0 = time.monotonic()
            sweep = search.Sweep(space=space, workload=workload, trials=trials, out=Path(tmp) / f"k{jobs}",
                                 study=f"k{jobs}", n_jobs=jobs, seed=1)
            result = search.run(sweep, progress=False)
            seconds = time.monotonic() - t0
            rates[jobs] = result.finished / seconds
            print(f"  --n-jobs {jobs}: {result.finished} trials of edge on Llama-2-7B decode in {seconds:.1f} s "
                  f"= {rates[jobs]:.0f} trials/s")
    print(f"  two processes / one: {rates[2] / rates[1]:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=1000, help="throughput trials (default 1000)")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if not args.skip_quality:
        print("search quality")
        quality(args.seeds)
    if not args.skip_throughput:
        print("throughput")
        throughput(args.trials)


if __name__ == "__main__":
    main()

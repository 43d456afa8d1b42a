"""Speed and fidelity of the accelerator cost model (issue 6, "Speed").

Prints
1. the median time of ``evaluate`` for one design point (the shipped datacenter design) on
   Llama-2-7B, prefill of 512 tokens + 256 decode steps at batch 16, every layer, with the
   PE characterization cached: with and without the per-operator breakdown (target <= 1 ms);
2. design points per second through ``evaluate_many`` (``stride=16``) on varied design points
   (target >= 10,000/s), and how far ``stride=16`` moves TPOT and J/token from ``stride=1``;
3. SCALE-Sim (its own venv, created once under ~/.cache/peforge/scalesim-venv because it needs
   numpy < 2): the time it takes for one GEMM of that workload against peforge's time for the
   whole model, and its compute cycles against ``peforge.dse.cost.array.gemm_cycles`` (the RTL formula, hw.systolic.gemm_cycles) on GEMM shapes of
   both dataflows, with a legend of the convention differences.

Run: python benchmarks/bench_costmodel.py [--designs N] [--repeats N] [--timing-gemm q_proj|attn.score]
     [--no-scalesim] [--scalesim-venv DIR]
The SCALE-Sim timing of the default GEMM (Llama-2-7B decode q_proj) takes a few minutes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

from peforge.dse.design.point import Compute
from peforge.dse.cost.api import evaluate, evaluate_many, load_design, prepare
from peforge.dse.cost.array import array_shapes, gemm_cycles
from peforge.dse.cost.units import unit_costs

HERE = Path(__file__).resolve().parent
DESIGNS = HERE.parent / "dse" / "designs"
RUNNER = HERE / "scalesim_runner.py"
DEFAULT_VENV = Path.home() / ".cache" / "peforge" / "scalesim-venv"
WORKLOAD = dict(batch=16, seq=512, gen=257)  # gen tokens in all: the prefill gives the first, then 256 decode steps

# (what, dataflow, rows = cols, M, K, N), ours: (M x K) @ (K x N). Sized so SCALE-Sim's
# Python simulation of all of them takes well under a minute.
SHAPES = [
    ("Llama-2-7B prefill attn.score, 1 head", "ws", 128, 512, 128, 512),
    ("Llama-2-7B prefill attn.score, 1 head", "os", 128, 512, 128, 512),
    ("Llama-2-7B decode attn.score, KV 513", "ws", 32, 1, 128, 513),
    ("Llama-2-7B decode attn.score, KV 513", "os", 128, 1, 128, 513),
    ("Llama-2-7B decode attn.context, KV 513", "ws", 128, 1, 513, 128),
    ("Llama-2-7B decode attn.context, KV 513", "os", 32, 1, 513, 128),
    ("GPT-2 decode q_proj, batch 16", "ws", 128, 16, 768, 768),
    ("GPT-2 decode q_proj, batch 16", "os", 32, 16, 768, 768),
    ("odd", "ws", 32, 5, 6, 7),
    ("odd", "os", 32, 5, 6, 7),
    ("odd", "ws", 32, 100, 70, 50),
    ("odd", "os", 128, 100, 70, 50),
    ("odd", "ws", 128, 200, 37, 129),
    ("odd", "os", 128, 200, 37, 129),
    ("odd", "ws", 32, 33, 300, 65),
    ("odd", "os", 32, 33, 300, 65),
]
# One GEMM of the benchmark workload on the datacenter design's 128 x 128 ws array.
TIMING_GEMMS = {
    "q_proj": ("Llama-2-7B decode q_proj (batch 16 tokens)", "ws", 128, 16, 4096, 4096),
    "attn.score": ("Llama-2-7B prefill attn.score (1 sequence, 1 head)", "ws", 128, 512, 128, 512),
}


def median_ms(call, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


# --- 1. one design point ---------------------------------------------------------------------

def bench_single(repeats: int) -> float:
    design = load_design(DESIGNS / "datacenter.toml")
    workload = prepare("llama-2-7b", **WORKLOAD, quant=design.run_quant())  # the formats its BF16 PE computes
    start = time.perf_counter()
    first = evaluate(design, workload, breakdown=True)  # characterizes the PE or reads the disk cache
    warm = time.perf_counter() - start
    with_breakdown = median_ms(lambda: evaluate(design, workload, breakdown=True), repeats)
    without = median_ms(lambda: evaluate(design, workload, breakdown=False), repeats)
    m = first.metrics
    print(f"1. evaluate(): {design.name} design ({design.compute.arrays} x {design.compute.rows}x{design.compute.cols} "
          f"{design.compute.dataflow}, {design.memory.units} x {design.memory.technology}) on Llama-2-7B, "
          f"prefill S={WORKLOAD['seq']} + {WORKLOAD['gen'] - 1} decode steps, batch {WORKLOAD['batch']}, all layers")
    print(f"   first call (warm-up, characterization from disk cache or computed): {warm * 1e3:.0f} ms")
    print(f"   median of {repeats} calls: {without:.3f} ms without breakdown, {with_breakdown:.3f} ms with "
          f"the per-operator breakdown (target <= 1 ms: {'met' if without <= 1 else 'NOT met'} without, "
          f"{'met' if with_breakdown <= 1 else 'NOT met'} with)")
    print(f"   result: TTFT {m['ttft_s'] * 1e3:.1f} ms, TPOT {m['tpot_s'] * 1e3:.2f} ms, "
          f"{m['tokens_per_s']:.0f} tokens/s, {m['j_per_token'] * 1e3:.1f} mJ/token, {m['area_mm2']:.1f} mm², "
          f"{m['power_w']:.1f} W, utilization {m['utilization'] * 100:.1f} %")
    bounds = first.operators.groupby(["phase", "bound"])["time_s"].sum()
    print("   time by phase and bound: " + ", ".join(f"{p}/{b} {t * 1e3:.1f} ms" for (p, b), t in bounds.items()))
    return without / 1e3


# --- 2. many design points -------------------------------------------------------------------

def varied_designs(count: int, seed: int = 6) -> list:
    """``count`` designs around the three shipped ones: array shape and count, clock (below the
    PE's Fmax), buffers and memory units varied. PE parameters stay as shipped, so no new
    characterization is needed."""
    rng = random.Random(seed)
    bases = [load_design(DESIGNS / f"{name}.toml") for name in ("edge", "datacenter", "pim")]
    fmax = [unit_costs(base).fmax_mhz for base in bases]
    sides = (16, 32, 48, 64, 96, 128, 192, 256)
    kib = (1024, 2048, 4096, 8192, 16384, 32768)
    designs = []
    for i in range(count):
        base, limit = bases[i % len(bases)], fmax[i % len(bases)]
        compute = dataclasses.replace(base.compute, rows=rng.choice(sides), cols=rng.choice(sides),
                                      arrays=rng.choice((1, 2, 4, 8, 16)),
                                      clock_mhz=round(rng.uniform(0.25, 0.99) * limit, 1))
        sram = dataclasses.replace(base.sram, weight_kib=rng.choice(kib), activation_kib=rng.choice(kib),
                                   output_kib=rng.choice(kib))
        memory = dataclasses.replace(base.memory, units=rng.choice((1, 2, 4, 8)))
        designs.append(dataclasses.replace(base, name=f"{base.name}-{i}", compute=compute, sram=sram, memory=memory))
    return designs


def evaluate_by_scheme(designs: list, stride: int):
    """``evaluate_many`` of ``designs``, one call per quantization scheme they run (a workload has one)."""
    import pandas as pd

    groups: dict[str, list[int]] = {}
    for i, design in enumerate(designs):
        groups.setdefault(design.run_quant(), []).append(i)
    frames = [evaluate_many([designs[i] for i in index], prepare("llama-2-7b", **WORKLOAD, quant=quant),
                            stride=stride).set_index(pd.Index(index)) for quant, index in groups.items()]
    return pd.concat(frames).sort_index()


def bench_many(count: int, subset: int) -> None:
    designs = varied_designs(count)
    evaluate_by_scheme(designs[:8], stride=16)  # imports pandas, fills the in-process PE cost cache
    times = []
    for _ in range(3):
        start = time.perf_counter()
        frame = evaluate_by_scheme(designs, stride=16)
        times.append(time.perf_counter() - start)
    wall = statistics.median(times)
    rejected = frame[frame["error"] != ""]
    print(f"2. evaluate_many(stride=16): {count} design points (edge/datacenter/pim varied: rows, cols, arrays, "
          f"clock 25-99 % of Fmax, SRAM, memory units), each on the scheme it runs")
    print(f"   median of 3 calls: {wall * 1e3:.0f} ms, {count / wall:,.0f} design points/s "
          f"(target >= 10,000/s: {'met' if count / wall >= 10_000 else 'NOT met'}); "
          f"{len(rejected)} rejected by check_design" + (f", e.g. {rejected['error'].iloc[0]}" if len(rejected) else ""))
    sub = designs[:subset]
    start = time.perf_counter()
    exact = evaluate_by_scheme(sub, stride=1)
    exact_wall = time.perf_counter() - start
    coarse = evaluate_by_scheme(sub, stride=16)
    ok = exact["error"] == ""
    parts = []
    for key in ("tpot_s", "j_per_token"):
        rel = ((coarse[key] - exact[key]).abs() / exact[key])[ok]
        worst = rel.idxmax()
        parts.append(f"{key} max {rel.max() * 100:.4f} % ({exact['design'][worst]}), median {rel.median() * 100:.5f} %")
    print(f"   stride=16 vs stride=1 on {subset} of them ({subset / exact_wall:,.0f} points/s at stride=1): "
          + "; ".join(parts))


# --- 3. SCALE-Sim ----------------------------------------------------------------------------

def scalesim_python(venv: Path) -> tuple[Path | None, str]:
    """The venv's python with SCALE-Sim and numpy < 2, creating the venv on first use; or None
    and why not."""
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import numpy, scalesim.scale_sim; assert int(numpy.__version__.split('.')[0]) < 2"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python, ""
    print(f"   creating {venv} for SCALE-Sim (python -m venv; pip install scalesim 'numpy<2'), once ...", flush=True)
    steps = [[sys.executable, "-m", "venv", str(venv)],
             [str(python), "-m", "pip", "install", "--quiet", "scalesim", "numpy<2"]]
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True)
        except OSError as error:
            return None, f"{' '.join(step[:3])}: {error}"
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
            return None, f"{' '.join(step[:4])} failed: {lines[-1]}"
    if subprocess.run(probe, capture_output=True).returncode != 0:
        return None, f"{venv}: scalesim still not importable with numpy < 2 after installing"
    return python, ""


def run_scalesim(python: Path, shapes: list) -> list[dict]:
    cases = [dict(rows=r, cols=r, dataflow=df, m=m, k=k, n=n) for _, df, r, m, k, n in shapes]
    done = subprocess.run([str(python), str(RUNNER)], input=json.dumps({"cases": cases}), capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"SCALE-Sim runner failed (exit {done.returncode}):\n{tail}")
    return json.loads(done.stdout)["results"]


def ours(df: str, r: int, m: int, k: int, n: int) -> float:
    shape = array_shapes([Compute(pe="mac", rows=r, cols=r, dataflow=df)])
    return float(gemm_cycles(shape, m, k, n, 8).item())


def scalesim_closed_form(df: str, r: int, m: int, k: int, n: int) -> int:
    """What SCALE-Sim's compute-only count works out to (read off its demand matrices): every
    fold runs alone, ws: R preload + M rows + (R - 1) skew + (C - 1) drain, os: K + (R - 1) +
    (C - 1); reported as the index of the last cycle, hence - 1."""
    c = r
    if df == "ws":
        return math.ceil(k / r) * math.ceil(n / c) * (2 * r + c + m - 2) - 1
    return math.ceil(m / r) * math.ceil(n / c) * (k + r + c - 2) - 1


def bench_scalesim(venv: Path, timing: str, peforge_s: float) -> None:
    print("3. SCALE-Sim 3.0.0 (Python class, save_disk_space=True, input_type_gemm=True, CALC bandwidth mode, "
          "buffers 2x each operand)")
    python, why = scalesim_python(venv)
    if python is None:
        print(f"   skipped: {why}")
        return
    try:
        results = run_scalesim(python, SHAPES)
    except (RuntimeError, json.JSONDecodeError, KeyError) as error:
        print(f"   skipped: {error}")
        return
    print("   cycles: SCALE-Sim compute cycles = COMPUTE_REPORT 'Total Cycles' - 'Stall Cycles' "
          "(stalls were 0 throughout); peforge = dse.cost.array.gemm_cycles(mac PE, 8-bit weights)")
    print("   shape (ours: (M x K) @ (K x N))                  df   array    M     K     N  folds"
          "   SCALE-Sim  SS form    peforge  deviation")
    forms_ok = 0
    for (what, df, r, m, k, n), res in zip(SHAPES, results):
        folds = math.ceil(k / r) * math.ceil(n / r) if df == "ws" else math.ceil(m / r) * math.ceil(n / r)
        form = scalesim_closed_form(df, r, m, k, n)
        forms_ok += form == res["compute"]
        mine = ours(df, r, m, k, n)
        deviation = (mine - res["compute"]) / res["compute"] * 100
        print(f"   {what:<46} {df:>3} {r:>3}x{r:<3} {m:>5} {k:>5} {n:>5} {folds:>6} {res['compute']:>11,} "
              f"{'=' if form == res['compute'] else '!=':>8} {mine:>10,.0f} {deviation:>+9.1f} %")
    print(f"   SCALE-Sim matched its closed form (legend) on {forms_ok}/{len(SHAPES)} shapes; "
          f"total stall cycles {sum(r['stalls'] for r in results)}")

    what, df, r, m, k, n = TIMING_GEMMS[timing]
    print(f"   timing one GEMM of the workload: {what}, M={m} K={k} N={n} on a {r}x{r} {df} array "
          f"(the datacenter design's array) ...", flush=True)
    try:
        [res] = run_scalesim(python, [TIMING_GEMMS[timing]])
    except (RuntimeError, json.JSONDecodeError, KeyError) as error:
        print(f"   timing skipped: {error}")
        return
    mine = ours(df, r, m, k, n)
    print(f"   SCALE-Sim: {res['seconds']:.2f} s for this one GEMM (sim object + run, without interpreter "
          f"start-up), {res['compute']:,} compute cycles vs peforge {mine:,.0f} "
          f"({(mine - res['compute']) / res['compute'] * 100:+.1f} %)")
    print(f"   peforge: {peforge_s * 1e3:.3f} ms for the WHOLE model (every GEMM of 32 layers, prefill + "
          f"256 decode steps, memory, energy, area)")
    print(f"   ratio: SCALE-Sim one GEMM / peforge whole model = {res['seconds'] / peforge_s:,.0f}x")


LEGEND = """
   Legend: why the cycle counts differ (R x C array; ours (M x K) @ (K x N))
   - naming: a SCALE-Sim GEMM topology row is "name, M, N, K": input M x K, filter K x N, output M x N,
     i.e. our product with the same letters, only the CSV columns ordered M, N, K. Its ws maps K on the
     array rows, N on the columns and streams M in time; os maps M on the rows, N on the columns and
     streams K; peforge does the same, so the fold counts agree.
   - counting: SCALE-Sim's 'Total Cycles' is the index of the last busy cycle (from 0), one less than a
     count; peforge counts cycles from the first accepted input beat to the last output row on the port.
   - weight preload (ws): SCALE-Sim loads each fold's R weight rows while the array idles, fold after
     fold; the RTL preloads the next fold into shadow registers while the current fold computes, so
     only the first preload is exposed and a fold costs max(M, R) beats instead of 2R + C + M - 2.
   - fill and drain: SCALE-Sim skews in (R - 1) and drains (C - 1) every fold before the next starts
     (ws fold = 2R + C + M - 2, os fold = K + R + C - 2); the RTL pays fill/drain once, after the last
     fold (ws: M - 1 + R + C; os: the last fold's r valid rows + C), folds overlapping otherwise
     (os: max(K, R, C - 1) beats per fold).
   - output register / deskew: the RTL adds its bottom-edge deskew and output register (ws: + 1 and the
     C columns of deskew; os: + 2 + the PE's pipeline latency); SCALE-Sim has no such stages.
   - SRAM stalls: none in either figure; SCALE-Sim runs in CALC bandwidth mode with buffers that hold every
     operand (its stall column stays 0), gemm_cycles is compute-only; peforge's cost model accounts
     memory separately (operator time = max(compute, DRAM)).
   - precision: SCALE-Sim has no operand width (1 MAC per PE per cycle); peforge's MAC PE with 8-bit
     weights is also one beat per cycle (the bit-serial PE would multiply by ceil(w_bits / k)).
   - partial os fold: SCALE-Sim drains all R rows of a fold even when only r = M mod R are valid; the
     RTL reads out the last fold's r valid rows only (the single-fold 5x6x7 os case).
   So peforge is lower wherever there are many folds (SCALE-Sim pays preload + fill + drain per fold):
   ws by about (2R + C + M - 2) / max(M, R), os by (K + R + C - 2) / max(K, R, C - 1). On a single
   ws fold the RTL is 3 cycles longer (1 counting + 2 deskew/output register); on a single os fold
   it is shorter by R - r, less 3 cycles (counting, output register, the MAC PE's 1-cycle latency)."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200, help="timed evaluate() calls (>= 200)")
    parser.add_argument("--designs", type=int, default=3000, help="design points for evaluate_many (>= 2000)")
    parser.add_argument("--subset", type=int, default=300, help="design points compared at stride 1 vs 16")
    parser.add_argument("--timing-gemm", choices=sorted(TIMING_GEMMS), default="q_proj",
                        help="the workload GEMM SCALE-Sim is timed on (q_proj takes minutes)")
    parser.add_argument("--no-scalesim", action="store_true", help="skip part 3")
    parser.add_argument("--scalesim-venv", type=Path, default=Path(os.environ.get("PEFORGE_SCALESIM_VENV", DEFAULT_VENV)),
                        help=f"venv holding SCALE-Sim, created if missing (default {DEFAULT_VENV})")
    args = parser.parse_args()
    # Timings move with whatever else runs on the machine: say how busy it was.
    print(f"peforge cost-model benchmark (python {sys.version.split()[0]}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} at start)")
    peforge_s = bench_single(args.repeats)
    print()
    bench_many(args.designs, args.subset)
    print()
    if args.no_scalesim:
        print("3. SCALE-Sim comparison skipped (--no-scalesim)")
        return 0
    bench_scalesim(args.scalesim_venv, args.timing_gemm, peforge_s)
    print(LEGEND)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

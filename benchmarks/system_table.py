"""Llama-2-70B and Mixtral-8x7B on systems of 1, 2, 4, 8 and 16 chips: the best split at each size.

Every chip is the shipped datacenter design (4 x 128 x 128 BF16 arrays at 400 MHz, 4 HBM3 stacks of
16 GiB), joined by NVLink 4 through a switch (the nvlink4 preset); the model runs in BF16, batch 16,
a 2048-token prompt and 256 decode steps. At each chip count every split ``tp x pp x ep = chips``
the model allows (ep for the MoE model only) is priced, with 1, 4 or 8 prefill micro-batches where
there are stages, and the split of most decode tokens/s is printed (ties: the lower TTFT), with the
number of splits tried and rejected (capacity per chip, or a split the shapes do not allow).

Run: python benchmarks/system_table.py [--batch N] [--seq N] [--gen N]
Uses the user's characterization cache (``~/.cache/peforge``).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from peforge.dse.cost.api import evaluate_many, load_design, prepare
from peforge.dse.design.point import System

DESIGNS = Path(__file__).resolve().parent.parent / "dse" / "designs"
MODELS = {"llama-2-70b": False, "mixtral-8x7b": True}  # name -> MoE
CHIPS = (1, 2, 4, 8, 16)


def splits(chips: int, moe: bool) -> list[System]:
    """Every (tp, pp, ep, micro-batches) of ``chips`` chips: ep only for a MoE model."""
    out = []
    for tp in (d for d in range(1, chips + 1) if chips % d == 0):
        for ep in (d for d in range(1, chips // tp + 1) if (chips // tp) % d == 0 and (moe or d == 1)):
            pp = chips // (tp * ep)
            for micro in ((1, 4, 8) if pp > 1 else (1,)):
                out.append(System(chips=chips, tp=tp, pp=pp, ep=ep, micro_batches=micro))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--gen", type=int, default=257, help="tokens generated in all (the first by the prefill)")
    args = parser.parse_args()
    start = time.perf_counter()
    chip = load_design(DESIGNS / "datacenter.toml")
    print(f"Chips: {chip.name} ({chip.compute.arrays} x {chip.compute.rows}x{chip.compute.cols} BF16 at "
          f"{chip.compute.clock_mhz:g} MHz, {chip.memory.units} x {chip.memory.technology}); links: nvlink4; "
          f"batch {args.batch}, prompt {args.seq}, {args.gen - 1} decode steps, {chip.run_quant()}")
    header = (f"{'model':<13} {'chips':>5} {'tp':>3} {'pp':>3} {'ep':>3} {'m':>2} {'tokens/s':>9} {'TTFT ms':>9} "
              f"{'TPOT ms':>8} {'J/token':>8} {'comm %':>7} {'GiB/chip':>8} {'splits':>10}")
    print(header)
    for model, moe in MODELS.items():
        workload = prepare(model, batch=args.batch, seq=args.seq, gen=args.gen, quant=chip.run_quant())
        for chips in CHIPS:
            systems = splits(chips, moe)
            designs = [dataclasses.replace(chip, name=f"s{i}", system=s) for i, s in enumerate(systems)]
            frame = evaluate_many(designs, workload, stride=1)
            ok = frame[frame["error"] == ""]
            tried = f"{len(ok)}/{len(frame)} ran"
            if ok.empty:
                reason = frame["error"].iloc[0]
                print(f"{model:<13} {chips:>5}   none fits: {reason[:110]}")
                continue
            best = ok.sort_values(["tokens_per_s", "ttft_s"], ascending=[False, True]).iloc[0]
            s = systems[int(best["design"][1:])]
            print(f"{model:<13} {chips:>5} {s.tp:>3} {s.pp:>3} {s.ep:>3} {s.micro_batches:>2} "
                  f"{best['tokens_per_s']:>9.1f} {best['ttft_s'] * 1e3:>9.1f} {best['tpot_s'] * 1e3:>8.2f} "
                  f"{best['j_per_token']:>8.3f} {best['comm_share'] * 100:>7.2f} {best['footprint_gib']:>8.1f} "
                  f"{tried:>10}")
    print(f"\n{Path(sys.argv[0]).name}: {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

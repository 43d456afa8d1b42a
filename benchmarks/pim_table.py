"""Decode-step time of the shipped PIM design under each schedule the runtime can take.

Prints, for ``dse/designs/pim.toml`` on Llama-2-7B over batch 1, 4, 16, 64, 256 × context
512, 1024, 2048, 4096: the mean decode-step time (TPOT) over 16 decode steps after a prefill of
``context - steps`` tokens (the last step attends to ``context``), NPU only, blocked (NPU + PIM in turn), concurrent (NeuPIMs sub-batches,
the best ``k`` of 2, 4, 8 and min(batch, 8) per step) and what the runtime chooses (the fastest the
hardware supports, per step), with the schedule chosen. A point whose KV cache does not fit
the design's memory is priced all the same (the memory size is not what this table asks) and
marked ``*``.

Run: python benchmarks/pim_table.py [--model llama-2-7b] [--steps 16]
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from peforge.dse.cost import pim as pim_cost
from peforge.dse.cost.api import load_design, prepare
from peforge.dse.cost.model import CostModel
from peforge.dse.cost.units import unit_costs

DESIGN = Path(__file__).resolve().parent.parent / "dse" / "designs" / "pim.toml"
BATCHES = (1, 4, 16, 64, 256)
CONTEXTS = (512, 1024, 2048, 4096)


def step_times(model: CostModel, workload) -> dict[str, float]:
    """Mean decode-step time (ms) of the first design for each fixed schedule and the chosen one."""
    batch = workload.batch
    concurrent = [c for c in pim_cost.candidates(batch) if c[0] == "concurrent"]
    out = {}
    for label, allowed in (("npu only", [("none", 0)]), ("blocked", [("blocked", 1)]),
                           ("concurrent", concurrent), ("chosen", None)):
        if allowed is not None and not allowed:
            out[label] = float("nan")  # batch 1: no sub-batches
            continue
        costs: dict = {}
        metrics = model.metrics(workload, phases=("decode",), costs_out=costs, pim_schedules=allowed)
        out[label] = float(metrics["tpot_s"][0]) * 1e3
        if allowed is None:
            shares = costs["decode"].schedule.shares(costs["decode"].weight)[0]
            out["schedule"] = ", ".join(f"{name} {share:.0%}" for name, share in shares.items())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="llama-2-7b")
    parser.add_argument("--steps", type=int, default=16, help="decode steps after the prefill")
    args = parser.parse_args()
    design = load_design(DESIGN)
    costs = unit_costs(design)
    model = CostModel([design], [costs])
    p = design.pim
    print(f"{design.name}: {design.compute.arrays} x {design.compute.rows}x{design.compute.cols} {design.compute.pe}, "
          f"{design.memory.units} x {design.memory.technology}; PIM {p.mode} on {p.channels} channels x {p.banks} banks "
          f"x {p.lanes} lanes at {p.clock_mhz:g} MHz (tRCD/tRP/tRAS/tCCD {p.t_rcd}/{p.t_rp}/{p.t_ras}/{p.t_ccd} cycles "
          f"from {p.t_rcd_ns:g}/{p.t_rp_ns:g}/{p.t_ras_ns:g}/{p.t_ccd_ns:g} ns)")
    print(f"{args.model}, decode-step time (ms), mean of the {args.steps} decode steps up to `context` tokens")
    header = f"{'batch':>5} {'context':>7} {'NPU only':>9} {'blocked':>9} {'concurrent':>10} {'chosen':>9}  schedule chosen"
    print(header)
    print("-" * len(header))
    for batch in BATCHES:
        for context in CONTEXTS:
            workload = prepare(args.model, batch=batch, seq=context - args.steps, gen=args.steps + 1,
                               quant=design.run_quant())  # the last step attends to `context` tokens
            fits = workload.footprint.total_bytes() <= model.memory_capacity[0]
            t = step_times(model, workload)
            print(f"{batch:>5} {context:>7} {t['npu only']:>9.3f} {t['blocked']:>9.3f} {t['concurrent']:>10.3f} "
                  f"{t['chosen']:>9.3f}  {t['schedule']}{'' if fits else '  *'}")


if __name__ == "__main__":
    main()

"""Number formats on Llama-2-7B: the datacenter design in BF16, FP8 and INT8, and the edge PEs at iso-area.

    python benchmarks/formats_llama.py [--model llama-2-7b] [--seq 512] [--gen 256]

1. The shipped ``datacenter`` design (BF16 ``fpmac`` arrays) against its FP8 E4M3 variant
   (``datacenter-fp8``) and the same arrays of INT8 MACs, each running the model in its own
   formats: decode at batch 16 and a prefill of ``--seq`` tokens.
2. The shipped ``edge`` design's area is the budget; a BF16 ``fpmac`` (1 and 8 lanes: the
   FP16-activation PEs have 8), the BitMoD-style
   (``fpbitserial``) and the MixPE-style (``fpmixed``) FP16-activation PEs each get the square
   array whose total area comes closest to it (same SRAM and memory; the edge clock, or the PE's
   characterized Fmax where that is lower), running W4 weights with their activation formats;
   decode at batch 1 and prefill.

Prints tokens/s, J/token and mm² for each; every figure is the cost model's (characterized PEs,
the RTL array's cycle formula).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from peforge.dse.cost.api import evaluate, prepare
from peforge.dse.cost.units import unit_costs
from peforge.dse.design.point import design_named


def priced(design, args, batch: int, phases):
    workload = prepare(args.model, batch=batch, seq=args.seq, gen=args.gen, quant=design.run_quant())
    return evaluate(dataclasses.replace(design, batch=batch), workload, phases=phases, breakdown=False).metrics


def line(label: str, design, args) -> None:
    decode = priced(design, args, design.batch, ("decode",))
    prefill = priced(design, args, 1, ("prefill",))
    print(f"{label:<34} {design.run_quant():<18} {design.compute.rows:>4}x{design.compute.cols:<4} "
          f"{design.compute.clock_mhz:>5.0f} "
          f"{decode['tokens_per_s']:>10.1f} {decode['j_per_token'] * 1e3:>9.2f} "
          f"{prefill['prefill_tokens_per_s']:>11.0f} {prefill['prefill_energy_j'] / args.seq * 1e3:>9.3f} "
          f"{decode['area_mm2']:>8.2f}")


def with_pe(design, pe: str, pe_params: dict, quant: str, rows: int | None = None):
    compute = dataclasses.replace(design.compute, pe=pe, pe_params=tuple(sorted(pe_params.items())),
                                  rows=rows or design.compute.rows, cols=rows or design.compute.cols)
    return dataclasses.replace(design, compute=compute, quant=quant)


def under_fmax(design):
    """``design`` with its clock lowered to its PE's characterized Fmax (in steps of 50 MHz) if above."""
    fmax = unit_costs(design).fmax_mhz
    if design.compute.clock_mhz <= fmax:
        return design
    return dataclasses.replace(design, compute=dataclasses.replace(design.compute, clock_mhz=fmax // 50 * 50))


def iso_area(design, pe: str, pe_params: dict, quant: str, budget_mm2: float, args):
    """The square array of ``pe`` (at the design's clock, or its Fmax if lower) whose design area
    is closest to ``budget_mm2``."""
    best = None
    for side in range(4, 129, 4):
        candidate = under_fmax(with_pe(design, pe, pe_params, quant, rows=side))
        try:
            area = priced(candidate, args, 1, ("decode",))["area_mm2"]
        except ValueError:  # e.g. a buffer too small for the array's weight tile
            continue
        if best is None or abs(area - budget_mm2) < abs(best[0] - budget_mm2):
            best = (area, candidate)
    return best[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--model", default="llama-2-7b")
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--gen", type=int, default=256)
    args = parser.parse_args()
    header = (f"{'design':<34} {'quant':<18} {'array':>9} {'MHz':>5} {'decode t/s':>10} {'mJ/token':>9} "
              f"{'prefill t/s':>11} {'mJ/token':>9} {'mm²':>8}")
    print(f"{args.model}, prompt {args.seq}, {args.gen} decode steps\n")
    datacenter = design_named("datacenter")
    print(f"1. datacenter (decode at batch {datacenter.batch})\n{header}")
    line("datacenter: BF16 fpmac", datacenter, args)
    line("datacenter-fp8: FP8 E4M3 fpmac", design_named("datacenter-fp8"), args)
    line("datacenter arrays of INT8 MACs", with_pe(datacenter, "mac", dict(a_bits=8, w_bits=8), "w8a8kv8"), args)

    edge = design_named("edge")
    budget = priced(edge, args, 1, ("decode",))["area_mm2"]
    print(f"\n2. edge PEs at the edge design's area, {budget:.2f} mm² (decode at batch 1)\n{header}")
    line(f"edge (shipped, {edge.compute.pe})", edge, args)
    for label, pe, pe_params, quant in (
            ("BF16 fpmac", "fpmac", dict(fmt="bf16"), "w4abf16kv8"),
            ("BF16 fpmac, 8 lanes", "fpmac", dict(fmt="bf16", lanes=8), "w4abf16kv8"),
            ("BitMoD-style fpbitserial", "fpbitserial", {}, "w4a16kv8"),
            ("MixPE-style fpmixed", "fpmixed", {}, "w4a16kv8")):
        line(label, iso_area(edge, pe, pe_params, quant, budget, args), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

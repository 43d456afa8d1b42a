"""Measured array cells and PIM lanes against the fixed figures the cost model used before it read them.

For every PE configuration of a space (default ``edge``) and both dataflows,
:func:`peforge.sim.cells.array_cell_costs` fits characterized n × n arrays; the table prints the
cell's area and steady-state pJ per lane MAC, the standalone PE's (its characterization
record), and their ratio, next to the fixed factor the cost model applied before it read these
fits (1.54 ws, 1.46 os, area and energy alike; column ``fixed``). The cost model now applies the
ratio measured on each PE kind's reference config (``peforge.dse.cost.units.cell_factors``).

Then :func:`peforge.sim.cells.pim_bank_costs` fits pim-channel blocks of 1, 2, 4 banks and the
table prints the per-lane area and pJ per lane MAC next to the FP16 MAC that the cost model
priced a PIM lane at before (Horowitz, ISSCC 2014, 45 nm: add 0.4 pJ / 1360 µm² + multiply
1.1 pJ / 1640 µm²). The two are different things, and the ratio is not a correction factor.
The RTL lanes are signed integer ``word_bits`` multiply-accumulates: a ``word_bits`` ×
``word_bits`` array multiplier and an adder tree into wide integer accumulators
(``2·word_bits + log2(rows·cols)`` bits), and a lane's share of its bank's input-vector buffer,
row-buffer register, timing counters and command checks. The lanes of HBM-PIM (Samsung,
ISSCC 2021) and AiM (SK hynix) are FP16 / BF16 units, which Horowitz prices as bare custom
add and multiply units with nothing around them. Energy: an FP16 MAC adds exponent compare,
alignment and normalization shifters and rounding, all switching on every operation, so an
integer lane is expected well below 1 (in the first-order toggle model, which also sees only
a fraction of the bank's buffer bits switch per MAC). Area is a closer call and depends on
``word_bits``: a 16 × 16 integer multiplier has twice the partial products of FP16's 11 × 11
mantissa multiplier, and the bank's share of buffers and accumulators comes on top, so at
``word_bits=16`` the RTL lane is *larger* than Horowitz's FP16 MAC (about 2×), and at 8 bits
slightly smaller (about 0.86× with 4 lanes).

Timings: every fit is run twice, first against an empty cache (cold: the characterizations
the fit needs, the standalone PE's characterization excluded since the sweep does it anyway)
and then again (warm: one cached JSON file).

    python benchmarks/scaling_fits.py [--space edge] [--tech 45nm] [--jobs 2] [--pim-lanes 16] [--pim-word-bits 16]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from peforge.dse.search.space import load_space
from peforge.dse.search.warmup import label, pe_configs
from peforge.sim.cells import array_cell_costs, pim_bank_costs
from peforge.sim.characterize import characterize
from peforge.sim.tech import HOROWITZ_45NM, preset_named


FIXED_CELL_FACTOR = {"ws": 1.54, "os": 1.46}  # what the cost model applied before these fits
# Horowitz, ISSCC 2014 (45 nm): an FP16 MAC is an FP16 multiply and an FP16 add
FP16_MAC_PJ_45NM, FP16_MAC_UM2_45NM = (sum(HOROWITZ_45NM[f"fp16 {op}"][i] for op in ("add", "multiply")) for i in (0, 1))


def timed(call):
    start = time.perf_counter()
    result = call()
    return result, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="edge", help="space whose PE configurations are fitted (default edge)")
    parser.add_argument("--tech", default="45nm", help="technology preset (default 45nm, Horowitz's node)")
    parser.add_argument("--pim-lanes", type=int, default=16, help="PIM lanes per bank (default 16)")
    parser.add_argument("--pim-word-bits", type=int, default=16, help="PIM lane operand width (default 16)")
    parser.add_argument("--jobs", type=int, default=1, help="processes characterizing the sizes of one fit (default 1)")
    parser.add_argument("--no-pim", action="store_true", help="skip the PIM lanes")
    parser.add_argument("--cache", type=Path, help="cache folder (default: a new empty one, so the first pass is cold)")
    args = parser.parse_args(argv)
    tech = preset_named(args.tech)
    with tempfile.TemporaryDirectory(prefix="peforge-cells-") as tmp:
        cache = args.cache or Path(tmp)
        say = lambda message: print(f"  {message}", file=sys.stderr)  # noqa: E731

        print(f"array cells ({args.space} space, {args.tech}): area in µm² (standard cells), energy in pJ per lane MAC")
        print(f"{'PE':<32} {'flow':<4} {'cell µm²':>9} {'PE µm²':>8} {'ratio':>6} {'cell pJ':>8} {'PE pJ':>7}"
              f" {'ratio':>6} {'fixed':>6} {'area R²':>8} {'cold s':>7} {'warm s':>7}")
        cold_total = 0.0
        for pe in pe_configs(load_space(args.space)):
            alone = characterize(pe, tech, cache_dir=cache, progress=say)
            for dataflow in ("ws", "os"):
                costs, cold = timed(lambda: array_cell_costs(pe, dataflow, tech, cache_dir=cache, progress=say,
                                                                 jobs=args.jobs))
                _, warm = timed(lambda: array_cell_costs(pe, dataflow, tech, cache_dir=cache))
                cold_total += cold
                print(f"{label(pe):<32} {dataflow:<4} {costs.cell_um2:>9.0f} {alone.area_um2:>8.0f}"
                      f" {costs.cell_um2 / alone.area_um2:>6.2f} {costs.cell_pj_per_mac:>8.3f} {alone.pj_per_mac:>7.3f}"
                      f" {costs.cell_pj_per_mac / alone.pj_per_mac:>6.2f} {FIXED_CELL_FACTOR[dataflow]:>6.2f}"
                      f" {costs.area.r2:>8.4f} {cold:>7.1f} {warm:>7.3f}")
                for note in costs.notes:
                    print(f"  characterized with {note}")
        print(f"cold seconds, all array fits of the space: {cold_total:.1f}")

        if args.no_pim:
            return 0
        params = {"lanes": args.pim_lanes, "word_bits": args.pim_word_bits}
        bank, cold = timed(lambda: pim_bank_costs(params, tech, cache_dir=cache, progress=say, jobs=args.jobs))
        _, warm = timed(lambda: pim_bank_costs(params, tech, cache_dir=cache))
        node_area = tech.um2_per_nand2.value / preset_named("45nm").um2_per_nand2.value
        node_energy = tech.pj_per_gate_toggle.value / preset_named("45nm").pj_per_gate_toggle.value
        fp16_um2, fp16_pj = FP16_MAC_UM2_45NM * node_area, FP16_MAC_PJ_45NM * node_energy
        print(f"\nPIM lanes (lanes={args.pim_lanes}, word_bits={args.pim_word_bits}, {args.tech}):"
              f" bank logic {bank.bank_um2:.0f} µm² (area R² {bank.area.r2:.4f}, energy R² {bank.energy.r2:.4f});"
              f" cold {cold:.1f} s, warm {warm:.3f} s")
        print(f"{'':<24} {'lane µm²':>9} {'pJ/MAC':>8}")
        print(f"{'RTL integer lane':<24} {bank.lane_um2:>9.0f} {bank.lane_pj_per_mac:>8.3f}")
        print(f"{'Horowitz FP16 MAC':<24} {fp16_um2:>9.0f} {fp16_pj:>8.3f}")
        print(f"{'ratio RTL / FP16':<24} {bank.lane_um2 / fp16_um2:>9.2f} {bank.lane_pj_per_mac / fp16_pj:>8.2f}")
        print(f"sources: {bank.sources}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

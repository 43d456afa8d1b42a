"""Area scaling: synthesize arrays of 2x2, 4x4, 8x8 PEs and PIM channels of 1, 2, 4 banks, fit
NAND2-equivalent gates = fixed + per-unit x units, and compare the per-PE slope with the
standalone PE's area that the cost model multiplies by R x C.

    python benchmarks/scaling_fits.py
"""

from __future__ import annotations

import sys
import time

from peforge.hw.blocks import block_named
from peforge.sim.characterize import characterize
from peforge.sim.scaling import fit_family

CASES = [
    ("systolic", ["pe=mac", "dataflow=os"], "mac", []),
    ("systolic", ["pe=mac", "dataflow=ws", "max_m=16"], "mac", []),
    ("systolic", ["pe=bitserial", "dataflow=os", "pe.lanes=2"], "bitserial", ["lanes=2"]),
    ("pim-channel", ["rows=16", "cols=32"], None, []),
]


def main() -> int:
    print(f"{'family':<12} {'parameters':<38} {'per unit':>10} {'fixed':>10} {'R^2':>7} {'max err':>8}"
          f" {'PE alone':>9} {'seconds':>8}")
    for family, base, pe, pe_params in CASES:
        start = time.perf_counter()
        fit = fit_family(family, base=base, progress=lambda msg: print(f"  {msg}", file=sys.stderr))
        alone = characterize(block_named(pe).configure(pe_params)).nand2_eq if pe else float("nan")
        print(f"{family:<12} {' '.join(base):<38} {fit.per_unit:>10.1f} {fit.fixed:>10.1f} {fit.r2:>7.4f}"
              f" {fit.max_rel_error:>7.1%} {alone:>9.1f} {time.perf_counter() - start:>8.1f}")
    print("units: NAND2 equivalents; 'per unit' is per PE (systolic) or per bank (pim-channel);"
          " 'PE alone' is the standalone PE the cost model prices per cell")
    return 0


if __name__ == "__main__":
    sys.exit(main())

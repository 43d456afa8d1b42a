"""Error of the float PE's approximate normalization (``FpMacConfig.approx_norm``) against its
exact mode, on random dot products (issue 12).

For each input format and accumulator, ``--cases`` dot products of ``--length`` pairs of
normal(0, 1) values rounded to the format, both modes with subnormals flushed: mean and largest
relative error, mean and largest difference in units in the last place of the accumulator (at
the exact result's exponent), and the share of results equal to the exact mode's
(:func:`peforge.hw.pe.fpmac.approx_error_stats`).

Run: python benchmarks/fpmac_approx.py [--cases N] [--length N] [--lanes N] [--seed N]
"""

from __future__ import annotations

import argparse

from peforge.hw.pe.fpmac import approx_error_stats

PAIRS = [("bf16", "fp32"), ("fp16", "fp32"), ("e4m3", "fp32"), ("e5m2", "fp32"), ("bf16", "bf16"), ("fp16", "fp16")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--lanes", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"{'fmt':>5} {'acc':>5} {'mean rel':>10} {'max rel':>10} {'mean ulp':>9} {'max ulp':>8} {'= exact':>8}")
    for fmt, acc in PAIRS:
        s = approx_error_stats(fmt, acc, lanes=args.lanes, length=args.length, cases=args.cases, seed=args.seed)
        print(f"{fmt:>5} {acc:>5} {s['mean_rel']:10.3e} {s['max_rel']:10.3e} {s['mean_ulps']:9.3f} "
              f"{s['max_ulps']:8.1f} {s['exact_fraction']:8.1%}")


if __name__ == "__main__":
    main()

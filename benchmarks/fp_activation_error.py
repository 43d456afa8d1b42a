"""Accuracy of the FP16 / BF16-activation PEs' block alignment (fpbitserial, fpmixed).

Prints, per ``align_bits``, the error of a PE's FP32 dot product (activations aligned per beat of
``lanes`` to the beat's largest exponent and truncated to align_bits bits, exact fixed-point
accumulation, one rounding to FP32) against the exact dot product rounded once to FP32:
mean / max relative error, mean / max error over sum |a_i * w_i|, and the share of bit-exact
results (:func:`peforge.hw.pe.fpalign.alignment_error`), for N(0, 1) activations and for
activations whose exponents spread over 2**-12 .. 2**12.

Run: python benchmarks/fp_activation_error.py [--format fp16|bf16] [--lanes 16] [--k 256]
     [--w-bits 4] [--trials 200] [--seed 0]
"""

from __future__ import annotations

import argparse

from peforge.hw.pe.fpalign import ACT_FORMATS, alignment_error


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--format", choices=ACT_FORMATS, default="fp16")
    parser.add_argument("--lanes", type=int, default=16)
    parser.add_argument("--k", type=int, default=256)
    parser.add_argument("--w-bits", type=int, default=4)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"{args.format} activations x int{args.w_bits} weights, K = {args.k}, beats of {args.lanes} lanes, "
          f"{args.trials} dot products per row; reference: exact sum rounded once to FP32")
    print(f"{'spread':>7} {'align_bits':>10} {'mean rel':>10} {'max rel':>10} {'mean/sum|aw|':>13} "
          f"{'max/sum|aw|':>12} {'exact':>6}")
    for spread in ("normal", "wide"):
        for row in alignment_error(fmt=args.format, lanes=args.lanes, k=args.k, w_bits=args.w_bits,
                                   trials=args.trials, spread=spread, seed=args.seed):
            print(f"{spread:>7} {row['align_bits']:>10} {row['mean_rel']:>10.2e} {row['max_rel']:>10.2e} "
                  f"{row['mean_norm']:>13.2e} {row['max_norm']:>12.2e} {row['exact']:>6.0%}")


if __name__ == "__main__":
    main()

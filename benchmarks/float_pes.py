"""Integer and floating-point PEs side by side: gates, depth, Fmax, area and pJ/MAC at 45 and 7 nm.

    python benchmarks/float_pes.py [--quick]

Characterizes (cached, like ``peforge characterize``) INT8 and INT16 MACs, the ``fpmac`` PE in
FP8 E4M3 / E5M2, BF16, FP16 and FP32 at 1 and 4 lanes (exact with subnormals, exact with
subnormals flushed, and approximate normalization, which flushes them), and the
FP16-activation BitMoD-style and MixPE-style PEs, next to the published 45 nm anchors (Horowitz, ISSCC 2014) as ratios. ``--quick``: lanes 1 only.
The numerical error of the approximate modes: ``fpmac_approx.py`` and ``fp_activation_error.py``.

The anchors are bare custom arithmetic units (a multiplier plus an adder); a characterized PE
also holds its accumulator register, input muxing and special-value logic, so a ratio above 1
is expected. Horowitz has no BF16 or FP8 figure: the BF16 rows are compared with his FP16
multiply (an 8-bit significand multiplier is smaller than FP16's 11-bit one, so that anchor
is high) plus an FP32 add, which is what an FP32-accumulating MAC does.
"""

from __future__ import annotations

import argparse
import sys

from peforge.hw.pe import pe_kind
from peforge.sim.characterize import characterize
from peforge.sim.tech import HOROWITZ_45NM

# (label, kind, PE parameters, anchor: Horowitz operations one MAC of the row corresponds to)
ROWS = [
    ("INT8 MAC", "mac", dict(a_bits=8, w_bits=8), ("int8 multiply", "int32 add")),
    ("INT16 MAC", "mac", dict(a_bits=16, w_bits=16), ()),
    *[(f"{label} fpmac", "fpmac", dict(fmt=fmt), anchor) for label, fmt, anchor in (
        ("FP8 E4M3", "e4m3", ()), ("FP8 E5M2", "e5m2", ()),
        ("BF16", "bf16", ("fp16 multiply", "fp32 add")),
        ("FP16", "fp16", ("fp16 multiply", "fp32 add")),
        ("FP32", "fp32", ("fp32 multiply", "fp32 add")))],
    ("BitMoD-style FP16 act", "fpbitserial", {}, ()),
    ("MixPE-style FP16 act", "fpmixed", {}, ()),
]


def configs(quick: bool):
    for label, kind, params, anchor in ROWS:
        variants = [("", params)]
        if kind == "fpmac":  # approximate normalization needs flushed subnormals: compare it with exact, flushed
            modes = (("", dict(subnormals=True)), (" flush", dict(subnormals=False)),
                     (" approx", dict(subnormals=False, approx_norm=True)))
            variants = [(f" x{lanes}{name}", dict(params, lanes=lanes, **mode))
                        for lanes in ((1,) if quick else (1, 4)) for name, mode in modes]
        for suffix, values in variants:
            yield label + suffix, pe_kind(kind).config(**values), anchor


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="lanes 1 only")
    args = parser.parse_args()
    print(f"{'PE':<28} {'gates':>7} {'NAND2-eq':>9} {'depth':>5} {'Fmax MHz':>9} {'µm² 45nm':>9} "
          f"{'pJ/MAC 45':>9} {'µm² 7nm':>8} {'pJ/MAC 7':>8} {'anchor pJ':>9} {'ratio':>6}")
    for label, config, anchor in configs(args.quick):
        r45 = characterize(config, "45nm", progress=lambda message: print(f"  ... {message}", file=sys.stderr))
        r7 = characterize(config, "7nm")
        anchor_pj = sum(HOROWITZ_45NM[op][0] for op in anchor) if anchor else None
        ratio = f"{r45.pj_per_mac / anchor_pj:6.2f}" if anchor_pj else f"{'':>6}"
        anchor_text = f"{anchor_pj:9.2f}" if anchor_pj else f"{'':>9}"
        print(f"{label:<28} {r45.gates:>7} {r45.nand2_eq:>9.0f} {r45.depth:>5} {r45.fmax_mhz:>9.0f} "
              f"{r45.area_um2:>9.0f} {r45.pj_per_mac:>9.3f} {r7.area_um2:>8.1f} {r7.pj_per_mac:>8.4f} "
              f"{anchor_text} {ratio}")
    print("\nanchors (Horowitz, ISSCC 2014, 45 nm): "
          + "; ".join(f"{op} {pj} pJ" for op, (pj, _) in HOROWITZ_45NM.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

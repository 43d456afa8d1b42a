"""The shipped designs on Llama-2-7B: decode at batch 1 and 32, prefill of 512 tokens.

    python benchmarks/design_table.py [--model llama-2-7b] [--quant SCHEME]

Prints TTFT, TPOT, tokens/s, J/token, mm², W and the footprint against the capacity (GiB) for
each shipped design (dse/designs/*.toml).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from peforge.dse.design.point import shipped_designs
from peforge.dse.cost.api import evaluate, load_design, prepare


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--model", default="llama-2-7b")
    parser.add_argument("--quant", default=None, help="default: each design's own quant, else w16a16kv16")
    parser.add_argument("--seq", type=int, default=512, help="prompt tokens (default 512)")
    parser.add_argument("--gen", type=int, default=257, help="tokens generated, the first by the prefill "
                        "(default 257: 256 decode steps)")
    args = parser.parse_args()
    print(f"{args.model}, {args.quant or 'each design in its own scheme'}, prompt {args.seq}, "
          f"{args.gen - 1} decode steps")
    print(f"{'design':<14} {'quant':<17} {'case':<16} {'TTFT ms':>9} {'TPOT ms':>9} {'tokens/s':>10} {'mJ/token':>9} "
          f"{'mm²':>8} {'W':>7} {'GiB used/capacity':>18}")
    for name, path in sorted(shipped_designs().items()):
        design = load_design(path)
        for label, batch, phases in (("decode, batch 1", 1, ("decode",)), ("decode, batch 32", 32, ("decode",)),
                                     ("prefill, S 512", 1, ("prefill",))):
            point = dataclasses.replace(design, batch=batch)
            workload = prepare(args.model, batch=batch, seq=args.seq, gen=args.gen, quant=design.run_quant(args.quant))
            try:
                m = evaluate(point, workload, phases=phases, breakdown=False).metrics
            except ValueError as error:  # e.g. the batch's KV cache does not fit the memory
                print(f"{name:<14} {workload.quant:<17} {label:<16} cannot run: {error}")
                continue
            ttft = f"{m['ttft_s'] * 1e3:9.1f}" if "ttft_s" in m else f"{'':>9}"
            tpot = f"{m['tpot_s'] * 1e3:9.2f}" if "tpot_s" in m else f"{'':>9}"
            rate = m.get("tokens_per_s", m.get("prefill_tokens_per_s"))
            energy = m.get("j_per_token", m.get("prefill_energy_j", 0) / (batch * args.seq))
            print(f"{name:<14} {workload.quant:<17} {label:<16} {ttft} {tpot} {rate:>10.1f} {energy * 1e3:>9.2f} "
                  f"{m['area_mm2']:>8.2f} {m['power_w']:>7.2f} {m['footprint_gib']:>9.2f}/{m['capacity_gib']:<8.0f}")
    print("tokens/s: decode throughput (batch x steps / decode time), prefill: prompt tokens / TTFT; "
          "mJ/token: decode energy per generated token, prefill energy per prompt token")
    return 0


if __name__ == "__main__":
    sys.exit(main())

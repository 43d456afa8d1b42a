"""Closing numbers of issue 16: the highest request rate each shipped design serves within the SLOs,
and disaggregated against co-located serving.

Prints
1. for every shipped design on the shipped conversation trace (1,000 requests, Llama-2-7B, each
   design in its own quantization scheme): the max SLO rate (bisection), goodput at that rate,
   per mm² and per W, area, peak KV use and preemptions there;
2. on the datacenter design: co-located pools of 2 and 3 chips against disaggregated ones of the
   same chip count (prefill x decode chips), the KV cache over the default link.

Run: python benchmarks/serve_table.py [--ttft S] [--tpot S] [--requests N]
"""

from __future__ import annotations

import argparse
import time

from peforge.dse.design.point import design_named, shipped_designs
from peforge.dse.serve.api import ServingConfig, load_trace, max_slo_rate
from peforge.dse.serve.metrics import SLO
from peforge.dse.serve.trace import Trace

MODEL = "llama-2-7b"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ttft", type=float, default=2.0, help="P99 TTFT SLO, s (default 2)")
    parser.add_argument("--tpot", type=float, default=0.1, help="P99 TPOT SLO, s (default 0.1)")
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    slo = SLO(ttft_p99_s=args.ttft, tpot_p99_s=args.tpot)
    trace = load_trace("conversation", model=MODEL)
    n = min(args.requests, len(trace))
    trace = Trace(arrival_s=trace.arrival_s[:n], prompt=trace.prompt[:n], output=trace.output[:n], name=trace.name)
    print(f"{n} requests of the shipped conversation trace on {MODEL}; SLO P99 TTFT <= {slo.ttft_p99_s:g} s, "
          f"P99 TPOT <= {slo.tpot_p99_s:g} s\n")
    head = (f"{'design':<16} {'quant':<18} {'mm²':>7} {'max rate':>9} {'goodput':>8} {'req/s/mm²':>10} "
            f"{'req/s/W':>8} {'TTFT99':>7} {'TPOT99':>7} {'KV peak':>7} {'preempt':>7} {'time':>6}")
    print(head)
    for name in sorted(shipped_designs()):
        design = design_named(name)
        t = time.perf_counter()
        try:
            rate, m = max_slo_rate(ServingConfig(design=design), MODEL, trace, slo)
        except ValueError as error:
            print(f"{name:<16} cannot serve: {error}")
            continue
        if rate == 0.0:
            print(f"{name:<16} {design.run_quant():<18} {m['area_mm2']:7.1f} meets the SLO at no rate (alone: "
                  f"TTFT P99 {m['ttft_p99_s']:.2f} s, TPOT P99 {m['tpot_p99_s']:.3f} s)")
            continue
        print(f"{name:<16} {design.run_quant():<18} {m['area_mm2']:7.1f} {rate:9.3f} {m['goodput_rps']:8.3f} "
              f"{m['goodput_per_mm2']:10.4f} {m['goodput_per_w']:8.4f} {m['ttft_p99_s']:7.2f} {m['tpot_p99_s']:7.3f} "
              f"{m['peak_kv_use']:7.0%} {m['preemptions']:7.0f} {time.perf_counter() - t:5.1f}s")
    print("\ndatacenter chips: co-located (every chip runs both phases) against disaggregated "
          "(prefill chips -> decode chips)")
    design = design_named("datacenter")
    print(f"{'service':<34} {'mm²':>7} {'max rate':>9} {'req/s/mm²':>10} {'TTFT99':>7} {'TPOT99':>7}")
    for label, config in (
            ("co-located x 2", ServingConfig(design=design, count=2)),
            ("disaggregated 1 prefill + 1 decode", ServingConfig(design=design, decode_design=design)),
            ("co-located x 3", ServingConfig(design=design, count=3)),
            ("disaggregated 1 prefill + 2 decode", ServingConfig(design=design, decode_design=design,
                                                                 decode_count=2)),
            ("disaggregated 2 prefill + 1 decode", ServingConfig(design=design, count=2, decode_design=design))):
        rate, m = max_slo_rate(config, MODEL, trace, slo)
        if rate == 0.0:
            print(f"{label:<34} meets the SLO at no rate")
            continue
        print(f"{label:<34} {m['area_mm2']:7.1f} {rate:9.3f} {rate / m['area_mm2']:10.4f} {m['ttft_p99_s']:7.2f} "
              f"{m['tpot_p99_s']:7.3f}")


if __name__ == "__main__":
    main()

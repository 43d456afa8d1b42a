"""Serve a request trace on a design: continuous batching under its KV-cache budget, TTFT / TPOT percentiles, goodput.

The trace is a CSV file (BurstGPT, Azure LLM inference, or peforge columns), synthetic:rate=R,n=N[,arrivals=gamma,cv=C,seed=S],
or a shipped trace's name (default: conversation). --decode-design makes the service disaggregated (Splitwise):
--design is then the prefill pool, --decode-design the decode pool, the KV cache sent over a link.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from peforge.dse.cost.metrics import human
from peforge.dse.design.point import design_named
from peforge.dse.serve.api import ServingConfig, load_trace, max_slo_rate, serve
from peforge.dse.serve.metrics import METRIC_LABELS, SLO
from peforge.dse.serve.sim import Link, Scheduler
from peforge.files import check_folder, write_atomic


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--design", required=True, help="a design TOML file or a shipped design name")
    parser.add_argument("--workload", required=True, help="a shipped model name or a config.json path")
    parser.add_argument("--trace", default="conversation",
                        help="a trace CSV, synthetic:rate=R,n=N[,...], or a shipped trace (default conversation)")
    parser.add_argument("--rate", type=float, default=None, help="scale the arrivals to R requests/s")
    parser.add_argument("--slo", default="ttft_p99=2,tpot_p99=0.1",
                        help="SLOs in seconds (default ttft_p99=2,tpot_p99=0.1)")
    parser.add_argument("--quant", default=None, help="quantization scheme (default: the design's)")
    parser.add_argument("--count", type=int, default=1, help="chips of --design (default 1)")
    parser.add_argument("--decode-design", default=None, help="a decode pool's design: disaggregated serving")
    parser.add_argument("--decode-count", type=int, default=1, help="chips of --decode-design (default 1)")
    parser.add_argument("--link-gbps", type=float, default=None,
                        help="KV transfer link, GB/s (default 50: 400 Gb/s InfiniBand NDR)")
    parser.add_argument("--chunk", type=int, default=None, help="chunked prefill: tokens per iteration")
    parser.add_argument("--block", type=int, default=16, help="KV block size, tokens (default 16)")
    parser.add_argument("--max-rate", action="store_true", help="also find the highest rate meeting the SLO")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="write metrics.json, latency.png and timeline.png to DIR")
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    if args.out is not None:
        check_folder(args.out, "--out")
    if args.rate is not None and not args.rate > 0:
        raise ValueError(f"--rate {args.rate}: must be a positive number of requests per second")
    slo = SLO.parse(args.slo)
    design = design_named(args.design)
    decode = design_named(args.decode_design) if args.decode_design else None
    link = Link() if args.link_gbps is None else Link(bandwidth_bytes_per_s=args.link_gbps * 1e9)
    config = ServingConfig(design=design, count=args.count, decode_design=decode, decode_count=args.decode_count,
                           link=link, scheduler=Scheduler(chunk_tokens=args.chunk, block_tokens=args.block))
    trace = load_trace(args.trace, model=args.workload)
    if args.rate is not None:
        trace = trace.at_rate(args.rate)
    result, metrics = serve(config, args.workload, trace, slo=slo, quant=args.quant)
    best = None
    if args.max_rate:
        best, _ = max_slo_rate(config, args.workload, trace, slo, quant=args.quant)
        metrics["max_rate_rps"] = best
        metrics["max_rate_per_mm2"] = best / metrics["area_mm2"]
    where = f"{design.name} x {args.count}" + (f" -> {decode.name} x {args.decode_count}" if decode else "")
    if args.out is not None:
        from peforge.dse.serve.plots import latency_png, timeline_png

        write_atomic(args.out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
        latency_png(result, args.out / "latency.png", title=f"{where} on {args.workload}, {trace.name}")
        timeline_png(result, args.out / "timeline.png", title=f"{where}: batch size and KV use")
    if args.json:
        print(json.dumps({"design": where, "workload": args.workload, "trace": trace.name, "metrics": metrics},
                         indent=2))
        return 0
    print(f"{where} serving {args.workload}: {len(trace)} requests of {trace.name} "
          f"({trace.rate_rps:.3g} req/s offered), SLO P99 TTFT <= {slo.ttft_p99_s:g} s, P99 TPOT <= {slo.tpot_p99_s:g} s")
    for key, (label, unit) in METRIC_LABELS.items():
        if key in metrics:
            value = metrics[key]
            text = human(value, unit) if unit in ("s", "J") else (f"{value:.1%}" if key in ("peak_kv_use", "kv_fragmentation")
                                                                  else f"{value:.4g} {unit}".strip())
            print(f"  {label:<28} {text:>16}")
    print(f"  {'meets the SLO':<28} {'yes' if metrics['slo_met'] else 'no':>16}")
    if best is not None:
        print(f"  {'max rate meeting the SLO':<28} {best:>12.4g} req/s  ({best / metrics['area_mm2']:.4g} req/s/mm²)")
    if args.out is not None:
        print(f"\nwrote {args.out / 'metrics.json'}, {args.out / 'latency.png'}, {args.out / 'timeline.png'}")
    return 0

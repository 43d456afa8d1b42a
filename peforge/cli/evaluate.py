"""Price a design point on an LLM workload: TTFT, TPOT, tokens/s, J/token, mm², W, per operator."""

from __future__ import annotations

import argparse
import dataclasses
import json

from peforge.dse.cost.api import evaluate, prepare
from peforge.dse.cost.metrics import METRICS, human
from peforge.dse.design.point import design_named


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--design", required=True, help="a design TOML file or a shipped design name")
    parser.add_argument("--workload", required=True, help="a shipped model name or a config.json path")
    parser.add_argument("--phase", choices=("both", "prefill", "decode"), default="both")
    parser.add_argument("--seq", type=int, default=512, help="prompt tokens per sequence (default 512)")
    parser.add_argument("--gen", type=int, default=256, help="decode steps (default 256)")
    parser.add_argument("--batch", type=int, default=None, help="sequences (default: the design's batch)")
    parser.add_argument("--quant", default="w16a16kv16", help="quantization scheme, e.g. w4a8kv8-g128")
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    design = design_named(args.design)
    for flag in ("seq", "gen", "batch"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ValueError(f"--{flag} {value}: must be at least 1")
    batch = args.batch or design.batch
    workload = prepare(args.workload, batch=batch, seq=args.seq, gen=args.gen, quant=args.quant)
    phases = ("prefill", "decode") if args.phase == "both" else (args.phase,)
    result = evaluate(design, workload, phases=phases)
    if args.json:
        print(json.dumps({"design": design.to_dict(), "workload": {
            "model": workload.model, "batch": batch, "seq": args.seq, "gen": args.gen, "quant": workload.quant},
            "metrics": result.metrics, "operators": result.operators.to_dict(orient="records"),
            "unit_costs": {k: v for k, v in dataclasses.asdict(result.costs).items() if k != "sources"},
            "sources": result.costs.sources}, indent=2))
        return 0
    print(f"{design.name} on {workload.model}: batch {batch}, prompt {args.seq}, {args.gen} decode steps, "
          f"{workload.quant}")
    for key, metric in METRICS.items():
        if key in result.metrics:
            print(f"  {metric.label:<30} {human(result.metrics[key], metric.unit):>18}")
    ops = result.operators.copy()
    ops["time_ms"] = ops["time_s"] * 1e3
    ops["energy_mj"] = ops["energy_j"] * 1e3
    print()
    print(ops[["phase", "operator", "kind", "bound", "time_ms", "energy_mj"]]
          .to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0

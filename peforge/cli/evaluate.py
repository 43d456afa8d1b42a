"""Price a design point on an LLM workload: TTFT, TPOT, tokens/s, J/token, mm², W, per operator."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from peforge.dse.cost.api import evaluate, prepare
from peforge.dse.cost.metrics import METRICS, human
from peforge.dse.cost.model import ENERGY_PARTS
from peforge.dse.design.point import design_named


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--design", required=True, help="a design TOML file or a shipped design name")
    parser.add_argument("--workload", required=True, help="a shipped model name or a config.json path")
    parser.add_argument("--phase", choices=("both", "prefill", "decode"), default="both")
    parser.add_argument("--seq", type=int, default=512, help="prompt tokens per sequence (default 512)")
    parser.add_argument("--gen", type=int, default=256,
                        help="tokens generated per sequence, the first by the prefill, the rest by "
                             "gen - 1 decode steps (default 256)")
    parser.add_argument("--batch", type=int, default=None, help="sequences (default: the design's batch)")
    parser.add_argument("--quant", default=None,
                        help="quantization scheme, e.g. w4a8kv8-g128 (default: the design's quant, else w16a16kv16)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--plot", type=Path, default=None, metavar="FILE.png",
                        help="also write the design's roofline (each operator against its roofs) to FILE.png")


def run(args: argparse.Namespace) -> int:
    design = design_named(args.design)
    for flag in ("seq", "gen", "batch"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ValueError(f"--{flag} {value}: must be at least 1")
    batch = args.batch or design.batch
    phases = ("prefill", "decode") if args.phase == "both" else (args.phase,)
    workload = prepare(args.workload, batch=batch, seq=args.seq, gen=args.gen, quant=design.run_quant(args.quant),
                       phases=phases)
    if "decode" in phases:
        workload.decode  # noqa: B018 -- a run with no decode step stops here, before any pricing
    if args.plot is not None and args.plot.suffix.lower() != ".png":
        raise ValueError(f"--plot {args.plot}: give a .png file")
    result = evaluate(design, workload, phases=phases)
    if args.plot is not None:
        from peforge.dse.report.roofline import roofline_png

        roofline_png(result, args.plot)
    if args.json:
        print(json.dumps({"design": design.to_dict(), "workload": {
            "model": workload.model, "batch": batch, "seq": args.seq, "gen": args.gen, "quant": workload.quant},
            "metrics": result.metrics, "area_mm2": result.area_mm2, "peaks": result.peaks,
            "operators": result.operators.to_dict(orient="records"),
            "unit_costs": {k: v for k, v in dataclasses.asdict(result.costs).items() if k != "sources"},
            "sources": result.costs.sources}, indent=2))
        return 0
    print(f"{design.name} on {workload.model}: batch {batch}, prompt {args.seq}, {args.gen} tokens generated "
          f"({args.gen - 1} decode steps), "
          f"{workload.quant}")
    for key, metric in METRICS.items():
        if key in result.metrics:
            print(f"  {metric.label:<30} {human(result.metrics[key], metric.unit):>18}")
    ops = result.operators
    print("\ntime by operator class (share of the phase; bound: where the time goes)")
    for phase, group in ops.groupby("phase", sort=False):
        total = group["time_s"].sum()
        for (kind, bound), part in group.groupby(["kind", "bound"], sort=False):
            share = part["time_s"].sum() / total if total else 0.0
            print(f"  {phase:<8} {kind:<12} {bound:<8} {human(part['time_s'].sum(), 's'):>10}  {share:6.1%}")
    energy = {label: ops[name].sum() for name, label in ENERGY_PARTS.items()}
    total = sum(energy.values())
    print("\nenergy by component (the whole run)")
    for label, joules in energy.items():
        if joules > 0:
            print(f"  {label:<20} {human(joules, 'J'):>10}  {joules / total:6.1%}")
    area = sum(result.area_mm2.values())
    print("\narea by component")
    for label, mm2 in result.area_mm2.items():
        if mm2 > 0:
            print(f"  {label:<20} {mm2:>8.3g} mm²  {mm2 / area:6.1%}")
    shown = ops.assign(time=[human(v, "s") for v in ops["time_s"]], energy=[human(v, "J") for v in ops["energy_j"]])
    print()
    print(shown[["phase", "operator", "kind", "bound", "time", "energy", "mapping"]].to_string(index=False))
    if args.plot is not None:
        print(f"\nroofline: {args.plot}")
    return 0

"""Price a design point on an LLM workload: TTFT, TPOT, tokens/s, J/token, mm², W, per operator."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from peforge.dse.api import evaluate, load_design, prepare
from peforge.dse.accelerator import DesignPoint


# metric key -> (label, unit, scale)
METRICS = {
    "ttft_s": ("TTFT", "ms", 1e3),
    "tpot_s": ("TPOT", "ms", 1e3),
    "tokens_per_s": ("decode throughput", "tokens/s", 1.0),
    "prefill_tokens_per_s": ("prefill throughput", "tokens/s", 1.0),
    "j_per_token": ("energy per decoded token", "mJ", 1e3),
    "prefill_energy_j": ("prefill energy", "J", 1.0),
    "area_mm2": ("area", "mm²", 1.0),
    "power_w": ("average power", "W", 1.0),
    "utilization": ("array utilization", "%", 100.0),
}


def shipped_designs() -> dict[str, Path]:
    from importlib import resources

    folder = resources.files("peforge.dse") / "designs"
    return {p.name[:-5]: Path(str(p)) for p in folder.iterdir() if p.name.endswith(".toml")}


def design_from_arg(text: str) -> DesignPoint:
    """A shipped design by name, or a TOML file."""
    designs = shipped_designs()
    if text in designs:
        return load_design(designs[text])
    if not text.endswith(".toml"):
        raise ValueError(f"--design {text!r}: not a shipped design ({', '.join(sorted(designs))}) "
                         "nor a .toml file")
    return load_design(text)


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
    design = design_from_arg(args.design)
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
    for key, (label, unit, scale) in METRICS.items():
        if key in result.metrics:
            print(f"  {label:<26} {result.metrics[key] * scale:>12.4g} {unit}")
    ops = result.operators.copy()
    ops["time_ms"] = ops["time_s"] * 1e3
    ops["energy_mj"] = ops["energy_j"] * 1e3
    print()
    print(ops[["phase", "operator", "kind", "bound", "time_ms", "energy_mj"]]
          .to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0

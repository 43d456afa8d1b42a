"""List the shipped LLM configs with their parameter counts."""

from __future__ import annotations

import argparse
import json

from peforge.models.config import load_config, zoo_names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _count(n: float) -> str:
    """A parameter count with the largest suffix that keeps it at or above 1: 6.74B, 230.4k."""
    scale, suffix = next(((s, x) for s, x in ((1e9, "B"), (1e6, "M"), (1e3, "k")) if n >= s), (1.0, ""))
    return f"{n / scale:.2f}{suffix}"


def run(args: argparse.Namespace) -> int:
    rows = []
    for name in zoo_names():
        cfg = load_config(name)
        rows.append({"name": name, "architecture": cfg.architecture, "params": cfg.params,
                     "active_params": cfg.active_params, "layers": cfg.num_layers,
                     "hidden": cfg.hidden_size, "heads": cfg.num_heads, "kv_heads": cfg.num_kv_heads,
                     "experts": f"{cfg.experts_per_token}/{cfg.num_experts}" if cfg.is_moe else "-",
                     "max_positions": cfg.max_positions})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':<14} {'type':<8} {'params':>9} {'active':>9} {'layers':>6} {'hidden':>6} "
          f"{'heads/kv':>8} {'experts':>7} {'context':>7}")
    for r in rows:
        print(f"{r['name']:<14} {r['architecture']:<8} {_count(r['params']):>9} {_count(r['active_params']):>9} "
              f"{r['layers']:>6} {r['hidden']:>6} {r['heads']:>4}/{r['kv_heads']:<3} {r['experts']:>7} "
              f"{r['max_positions']:>7}")
    return 0

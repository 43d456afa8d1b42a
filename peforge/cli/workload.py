"""Show the operators of one LLM forward step (prefill or decode): shapes, MACs, bytes, ops/byte.

NAME_OR_PATH is a shipped model (see `peforge workloads`) or a Hugging Face style
config.json (or the folder holding it). Prefill runs --seq new tokens per sequence;
decode adds one token to each of --batch sequences whose KV cache holds --kv tokens.
"""

from __future__ import annotations

import argparse
import json

from peforge.models.config import load_config
from peforge.models.graph import PHASES, Graph, Operator, build_graph
from peforge.models.quant import DEFAULT_SCHEME, parse_scheme


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["show"], help="what to do with the workload")
    parser.add_argument("model", metavar="NAME_OR_PATH", help="shipped model name or config.json path")
    parser.add_argument("--phase", choices=PHASES, required=True, help="prefill or decode")
    parser.add_argument("--seq", type=int, default=None, help="prefill: new tokens per sequence (default 512)")
    parser.add_argument("--batch", type=int, default=1, help="sequences in the step (default 1)")
    parser.add_argument("--kv", type=int, default=None,
                        help="tokens already in each KV cache (default: 512 for decode, 0 for prefill)")
    parser.add_argument("--quant", default=DEFAULT_SCHEME,
                        help="formats, e.g. w4a8kv4-g128 (default w16a16kv16)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")


def run(args: argparse.Namespace) -> int:
    if args.phase == "decode" and args.seq is not None:
        raise ValueError("--seq applies to prefill only; decode adds 1 token per sequence (use --kv for context)")
    scheme = parse_scheme(args.quant)
    cfg = load_config(args.model)
    kv = args.kv if args.kv is not None else (512 if args.phase == "decode" else 0)
    for flag, value, low in (("--batch", args.batch, 1), ("--seq", args.seq, 1), ("--kv", kv, 0)):
        if value is not None and value < low:
            raise ValueError(f"{flag} {value} is out of range; allowed integers >= {low}")
    graph = build_graph(cfg, args.phase, batch=args.batch, seq=args.seq, kv_len=kv, quant=scheme)
    if args.json:
        print(json.dumps(graph.to_dict(), indent=2))
    else:
        _print(graph)
    return 0


def _si(value: float, unit: str = "") -> str:
    """Engineering notation: 6.74 G, 512.0 M."""
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.2f} {prefix}{unit}"
    return f"{value:.0f} {unit}".rstrip() if float(value).is_integer() else f"{value:.2f} {unit}".rstrip()


def _print(graph: Graph) -> None:
    cfg = graph.config
    mlp = f"{cfg.intermediate_size} {'gated ' if cfg.gated_mlp else ''}{cfg.activation}"
    if cfg.is_moe:
        mlp += f", {cfg.experts_per_token} of {cfg.num_experts} experts"
    print(f"{cfg.name} ({cfg.architecture}): {cfg.num_layers} layers, hidden {cfg.hidden_size}, "
          f"heads {cfg.num_heads}/{cfg.num_kv_heads} kv x {cfg.head_dim}, mlp {mlp}, vocab {cfg.vocab_size}")
    params = f"parameters {cfg.params / 1e9:.3f} B ({cfg.params:,})"
    if cfg.is_moe:
        params += f", active per token {cfg.active_params / 1e9:.3f} B"
    print(params)
    step = (f"{graph.seq} new tokens per sequence" if graph.phase == "prefill" else "1 new token per sequence")
    print(f"{graph.phase}: batch {graph.batch}, {step}, {graph.kv_len} cached, quant {graph.quant.name}")
    print()
    header = f"{'kind':<12} {'MACs':>11} {'ops':>11} {'weights':>10} {'acts':>10} {'KV':>10} {'ops/B':>8}"
    print(header)
    rows = {**graph.by_kind(), "total": graph.totals()}
    for kind, t in rows.items():
        print(f"{kind:<12} {_si(t['macs']):>11} {_si(t['ops']):>11} {_si(t['weight_bytes'], 'B'):>10} "
              f"{_si(t['act_bytes'], 'B'):>10} {_si(t['kv_bytes'], 'B'):>10} {t['intensity']:>8.2f}")
    print()
    print(f"per layer: layer 0 of {cfg.num_layers} (all layers alike), then the operators outside the layers")
    print(f"{'layer':>5} {'operator':<22} {'kind':<11} {'M':>7} {'K':>7} {'N':>7} {'count':>6} "
          f"{'MACs':>11} {'weights':>10} {'acts':>10} {'KV':>10} {'ops/B':>8}")
    for op in graph.layer(-1) + graph.layer(0) + graph.layer(cfg.num_layers):
        _row(op)


def _row(op: Operator) -> None:
    print(f"{op.layer:>5} {op.name:<22} {op.kind:<11} {op.m:>7} {op.k:>7} {op.n:>7} {op.count:>6} "
          f"{_si(op.macs):>11} {_si(op.weight_bytes, 'B'):>10} {_si(op.act_bytes, 'B'):>10} "
          f"{_si(op.kv_bytes, 'B'):>10} {op.intensity:>8.2f}")

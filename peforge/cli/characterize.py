"""Characterize a block: measured cycles, Yosys gates and depth, toggles, and area / Fmax / energy.

Measurements are cached (default ~/.cache/peforge/records); --no-cache measures again.
--tech takes a built-in preset (45nm, 7nm) or a .toml preset file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from peforge.sim.characterize import Record, characterize
from peforge.files import check_folder
from peforge.sim.tech import PRESETS, resolve

from ._blockargs import add_block_arguments, config_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_block_arguments(parser)
    parser.add_argument("--tech", default="45nm",
                        help=f"technology preset: {' | '.join(PRESETS)} or a .toml file (default 45nm)")
    parser.add_argument("--json", action="store_true", help="print the record as JSON")
    parser.add_argument("--ice40", action="store_true", help="also count iCE40 LUTs and flip-flops (slower)")
    parser.add_argument("--no-cache", action="store_true", help="measure again even if a cached record exists")
    parser.add_argument("--cache-dir", type=Path, default=None, help="cache folder (default ~/.cache/peforge/records)")


def _table(record: Record) -> str:
    params = " ".join(f"{k}={v}" for k, v in record.params.items())
    cells = " ".join(f"{t.strip('$_')}:{n}" for t, n in record.cells.items())
    ice40 = record.ice40 or {}
    rows = [
        ("block", f"{record.block} ({record.config_hash})  {params}"),
        ("technology", record.tech),
        ("latency", f"{record.latency_cycles} cycles (first beat to first result)"),
        ("interval", f"{record.interval_cycles} cycles between input beats; {record.cycles_per_op:.2f} cycles "
                     f"per operation of {record.macs_per_op:g} MACs"),
        ("cycles checked", f"{record.cycles_checked} result cycle counts equal to cycles()"),
        ("gates", f"{record.gates} gates + {record.flops} flip-flops = {record.nand2_eq:.1f} NAND2-eq."),
        ("cells", cells),
        ("transistors", f"{record.transistors} (Yosys estimate)"),
        ("logic depth", f"{record.depth} gate levels"),
        ("multipliers", f"{record.multipliers} multiplier cells before mapping"),
        ("memory", f"{record.memory_bits} bits of RTL memory (not in gates' area)"),
        ("iCE40", f"{ice40['luts']} LUT4, {ice40['flops']} FF, {ice40['carries']} carry" if ice40 else "(--ice40)"),
        ("toggles", f"{record.toggles_per_op:.1f} per op, {record.toggles_per_mac:.2f} per MAC "
                    f"(activity {record.alpha:.3f} per bit per cycle)"),
        ("area", f"{record.area_um2:.1f} µm²"),
        ("Fmax", f"{record.fmax_mhz:.0f} MHz"),
        ("energy", f"{record.pj_per_op:.3f} pJ/op, {record.pj_per_mac:.4f} pJ/MAC"),
        ("tools", " ".join(f"{k} {v}" for k, v in record.tools.items())),
        ("measured", f"in {record.measure_seconds:.1f} s" + (" (cached)" if record.cached else "")),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    tech = resolve(args.tech)
    if args.cache_dir is not None:
        check_folder(args.cache_dir, "--cache-dir")
    start = time.perf_counter()

    def progress(message: str) -> None:
        print(f"[{time.perf_counter() - start:5.1f} s] {message}", file=sys.stderr, flush=True)

    try:
        record = characterize(config, tech, cache_dir=args.cache_dir, use_cache=not args.no_cache,
                              ice40=args.ice40, progress=progress)
    except RuntimeError as error:  # a failing testbench or Yosys: one line, not a traceback
        print(f"peforge: characterize: {str(error).splitlines()[0]}", file=sys.stderr)
        return 1
    print(json.dumps(record.to_dict(), indent=2) if args.json else _table(record))
    return 0

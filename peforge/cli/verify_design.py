"""Run an exported design's tile testbench: the tiny layer on its tile Verilog, bit for bit, cycles against the prediction."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", type=Path, metavar="DIR", help="a folder written by `peforge export-design`")
    parser.add_argument("--sim", choices=("verilator", "icarus"), default="verilator",
                        help="simulator (default: verilator)")
    parser.add_argument("--build-dir", type=Path, default=None,
                        help="where cocotb builds and logs go (default: a temporary folder)")
    parser.add_argument("--phases", default="prefill,decode",
                        help="phases to run (default: prefill,decode; decode alone starts from the golden KV cache)")
    parser.add_argument("--exact-cycles", action="store_true",
                        help="also fail when a phase's cycles differ from the prediction")
    parser.add_argument("--json", action="store_true", help="print the JSON report (measured against predicted "
                                                            "cycles per phase and operator)")


def run(args: argparse.Namespace) -> int:
    from peforge.dse.report.tile_rtl import verify_folder
    from peforge.files import check_folder
    from peforge.sim.tools import missing_simulator

    why = missing_simulator(args.sim)
    if why:
        raise ValueError(f"--sim {args.sim}: {why}")
    if not args.folder.is_dir():
        raise ValueError(f"{args.folder}: not a folder (one written by `peforge export-design`)")
    only = tuple(name.strip() for name in args.phases.split(",") if name.strip())
    if args.build_dir is not None:
        check_folder(args.build_dir, "--build-dir")
        report = verify_folder(args.folder, args.sim, args.build_dir, only=only)
    else:
        with tempfile.TemporaryDirectory(prefix="peforge-verify-design-") as tmp:
            report = verify_folder(args.folder, args.sim, Path(tmp), only=only)
    print(json.dumps(report.to_dict(), indent=1) if args.json else report.summary())
    if not report.passed:
        print(f"peforge: verify-design: {report.problem()}", file=sys.stderr)
        return 1
    if args.exact_cycles and not report.cycles_exact:
        off = [f"{p.name} {p.measured} != {p.predicted}" for p in report.phases if p.measured != p.predicted]
        print(f"peforge: verify-design: cycles differ from the prediction: {', '.join(off)}", file=sys.stderr)
        return 1
    return 0

"""Write the Verilog of one trial's compute block (PE, a small array, the full array), a cocotb testbench runner and a README."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", type=Path, metavar="DIR", help="a study folder written by `peforge sweep`")
    parser.add_argument("--trial", type=int, required=True, help="trial number (see pareto.csv)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--full-size", action=argparse.BooleanOptionalAction, default=None,
                        help="generate the array at the design's size (default: only up to 16 x 16 PEs)")


def run(args: argparse.Namespace) -> int:
    from peforge.dse.report.rtl import export_design
    from peforge.files import check_folder

    check_folder(args.out, "--out")
    exported = export_design(args.folder, args.trial, args.out, full_size=args.full_size,
                             say=lambda text: print(text, file=sys.stderr))
    for path in exported.files:
        print(path)
    for note in exported.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0

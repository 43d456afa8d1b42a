"""Write one trial's Verilog (PE, arrays, the accelerator tile), the tiny layer's program and DRAM images, testbenches, a README."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", type=Path, metavar="DIR", nargs="?", default=None,
                        help="a study folder written by `peforge sweep` (or give --design)")
    parser.add_argument("--trial", type=int, default=None, help="trial number (see pareto.csv)")
    parser.add_argument("--design", default=None, metavar="NAME|FILE.toml",
                        help="export a shipped design or a design file instead of a study's trial")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--full-size", action=argparse.BooleanOptionalAction, default=None,
                        help="generate the array and the tile at the design's size (default: arrays up to 16 x 16 PEs, "
                             "the tile up to 64 PEs)")
    parser.add_argument("--tile", action=argparse.BooleanOptionalAction, default=True,
                        help="also the accelerator tile and the tiny layer's testbench files (default: yes)")


def run(args: argparse.Namespace) -> int:
    from peforge.dse.design.point import design_named
    from peforge.dse.report.rtl import export_design
    from peforge.files import check_folder

    if args.design is None and (args.folder is None or args.trial is None):
        raise ValueError("export-design: give a study folder DIR with --trial N, or --design NAME|FILE.toml")
    if args.design is not None and (args.folder is not None or args.trial is not None):
        raise ValueError("export-design: --design exports a design file; it takes no study folder or --trial")
    design = design_named(args.design) if args.design is not None else None
    check_folder(args.out, "--out")
    exported = export_design(args.folder, args.trial, args.out, full_size=args.full_size, design=design,
                             tile=args.tile, say=lambda text: print(text, file=sys.stderr))
    for path in exported.files:
        print(path)
    for note in exported.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0

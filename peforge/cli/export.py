"""Export a block as Verilog: writes DIR/<block>.v."""

from __future__ import annotations

import argparse
from pathlib import Path

from peforge.files import check_folder
from peforge.hw.export import export

from ._blockargs import add_block_arguments, config_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_block_arguments(parser)
    parser.add_argument("--out", required=True, type=Path, help="output folder")


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    check_folder(args.out, "--out")
    path = export(config, args.out)
    print(path)
    return 0

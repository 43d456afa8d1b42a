"""Run a block's testbench (golden model, corner cases, exact cycle counts) in a simulator."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from peforge.hw.params import config_hash
from peforge.files import check_folder
from peforge.sim import runners
from peforge.sim.tools import missing_simulator

from ._blockargs import add_block_arguments, config_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_block_arguments(parser)
    parser.add_argument("--sim", choices=runners.SIMULATORS, default="amaranth", help="simulator (default: amaranth)")
    parser.add_argument("--seed", type=int, default=0, help="stimulus seed (default: 0)")
    parser.add_argument("--build-dir", type=Path, default=None,
                        help="where cocotb builds and logs go (default: a temporary folder)")


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    why = missing_simulator(args.sim)
    if why:
        raise ValueError(f"--sim {args.sim}: {why}")
    if args.build_dir is not None:
        check_folder(args.build_dir, "--build-dir")
    if args.build_dir is None:
        with tempfile.TemporaryDirectory(prefix=f"peforge-{args.block}-{config_hash(config)}-") as tmp:
            report = runners.run(config, args.sim, Path(tmp), args.seed)
    else:
        report = runners.run(config, args.sim, args.build_dir, args.seed)
    print(report.summary())
    for failure in report.failures[:10]:
        print(f"  {failure}")
    return 0 if report.passed else 1

"""Regenerate a study folder's outputs (trials tables, Pareto front, plot, HTML report) from its storage."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", type=Path, metavar="DIR", help="a study folder written by `peforge sweep`")


def run(args: argparse.Namespace) -> int:
    from peforge.dse.report.tables import load_tables, summary, write_report

    written = write_report(args.folder)
    print(summary(load_tables(args.folder)))
    for path in written.values():
        print(path)
    return 0

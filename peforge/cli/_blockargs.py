"""Arguments shared by commands that take a block: ``BLOCK [KEY=VALUE ...]``."""

from __future__ import annotations

import argparse
from typing import Any

from peforge.hw.blocks import BLOCKS, block_named


def add_block_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("block", help=f"block name: {' | '.join(BLOCKS)}")
    parser.add_argument("assignments", nargs="*", metavar="KEY=VALUE",
                        help="block parameters (see `peforge blocks`); the rest keep their defaults")


def config_from_args(args: argparse.Namespace) -> Any:
    """The validated block config; a bad name, key or value raises ``ValueError`` naming it."""
    block = block_named(args.block)
    try:
        return block.configure(args.assignments)
    except (TypeError, ValueError) as error:
        raise ValueError(f"block {args.block}: {error}") from None

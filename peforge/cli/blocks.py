"""List the hardware blocks with their parameters, defaults and allowed values."""

from __future__ import annotations

import argparse
import json

from peforge.hw import params
from peforge.hw.blocks import BLOCKS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    listing = {name: {"summary": b.summary, "parameters": params.describe(b.config)} for name, b in BLOCKS.items()}
    if args.json:
        print(json.dumps(listing, indent=2))
        return 0
    for name, entry in listing.items():
        print(f"{name}: {entry['summary']}")
        rows = entry["parameters"]
        width = max(len(r["name"]) for r in rows)
        dwidth = max(len(r["default"]) for r in rows)
        awidth = max(len(r["allowed"]) for r in rows)
        for r in rows:
            print(f"  {r['name']:<{width}}  default {r['default']:<{dwidth}}  allowed {r['allowed']:<{awidth}}  {r['doc']}")
        print()
    return 0

"""Verilog export of any block config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from amaranth.back import verilog

from ..files import write_atomic
from .blocks import block_of


def verilog_text(config: Any) -> str:
    block = block_of(config)
    return verilog.convert(block.component(config), name=block.module_name, emit_src=False)


def export(config: Any, out_dir: Path) -> Path:
    """Write ``out_dir/<block>.v`` atomically (a temp file renamed into place) and return its path."""
    return write_atomic(Path(out_dir) / f"{block_of(config).module_name}.v", verilog_text(config))

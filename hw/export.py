"""Verilog export of any block config."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from amaranth.back import verilog

from .blocks import block_of


def verilog_text(config: Any) -> str:
    block = block_of(config)
    return verilog.convert(block.component(config), name=block.module_name, emit_src=False)


def export(config: Any, out_dir: Path) -> Path:
    """Write ``out_dir/<block>.v`` atomically (a temp file renamed into place) and return its path."""
    text = verilog_text(config)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{block_of(config).module_name}.v"
    fd, tmp = tempfile.mkstemp(dir=out_dir, suffix=".v.tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)  # mkstemp makes it private; an exported design is for everyone
    os.replace(tmp, path)
    return path

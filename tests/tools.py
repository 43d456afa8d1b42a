"""One gate for tests that need an external tool (Icarus, PostgreSQL, psycopg2, Verilator, ...).

A test asks for a tool with ``need(missing_...(...))``: when the tool is there, nothing happens;
when it is absent the test is skipped with the reason, or, with ``PEFORGE_REQUIRE_TOOLS=1`` in
the environment (CI sets it in ``.ci/run``), fails with the reason, so a machine that lost a
tool cannot report a green run that tested less. Tests never guard tool use with a bare ``if``.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
from pathlib import Path

import pytest

REQUIRE = "PEFORGE_REQUIRE_TOOLS"


def required() -> bool:
    """Whether missing tools fail the tests that need them (``PEFORGE_REQUIRE_TOOLS=1``)."""
    return os.environ.get(REQUIRE, "") == "1"


def need(missing: str | None) -> None:
    """Skip (or, under ``PEFORGE_REQUIRE_TOOLS=1``, fail) the calling test when ``missing`` is a reason.

    Parameters
    ----------
    missing : why the tool cannot run here, or None when it can (what ``missing_*`` return,
        or :func:`peforge.sim.tools.missing_simulator`)
    """
    if missing is None:
        return
    if required():
        pytest.fail(f"{missing} ({REQUIRE}=1: a missing tool fails the test)", pytrace=False)
    pytest.skip(missing)


def find_program(name: str, *, fallback_glob: str | None = None) -> str | None:
    """The path of program ``name`` on PATH, else the last match of ``fallback_glob``, else None."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(fallback_glob)) if fallback_glob else []
    return candidates[-1] if candidates else None


def missing_programs(*names: str, hint: str, fallback_glob: str | None = None) -> str | None:
    """Why some of ``names`` cannot be run (``hint`` says how to install them), or None.

    ``fallback_glob`` is a pattern with ``{name}`` for programs installed off PATH
    (Debian puts PostgreSQL's in ``/usr/lib/postgresql/<version>/bin``).
    """
    absent = [n for n in names
              if find_program(n, fallback_glob=fallback_glob.format(name=n) if fallback_glob else None) is None]
    return f"{', '.join(absent)} not found ({hint})" if absent else None


def missing_module(name: str, *, hint: str) -> str | None:
    """Why Python module ``name`` cannot be imported (``hint`` says how to install it), or None."""
    return None if importlib.util.find_spec(name) is not None else f"Python module {name} not found ({hint})"


def run_temp_root(tmp_path_factory) -> Path:
    """This pytest run's temporary root: the session's folder, or under pytest-xdist the folder its
    workers' session folders share."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


# The tests that price an fpmac design. The first one on a cold cache fits the fpmac ws cell (BF16
# arrays of 1 to 9 cells through Yosys: minutes); under pytest-xdist they share one worker and run
# first (tests/conftest.py), so the fit is made once while the other worker runs the rest.
FPMAC_CELL_FIT = pytest.mark.xdist_group("fpmac-ws-cell-fit")

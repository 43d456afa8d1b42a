"""The array's cycle formula against the RTL on Verilator, at sizes where every term matters.

For every PE kind of the registry and both dataflows, an array of 8 x 8 cells (16 x 16 too, slow) and, for
the kinds of :data:`NON_SQUARE`, an output-stationary 4 x 16 one (C - 1 > R: the period's C - 1
term binds; every kind has it in ``tests/rtl/test_cycles_property_rtl.py``) run the GEMMs of
:func:`cycle_cases.binding_shapes`: K above 2000, M up to 61, N up to 3·C, each argument of each
max binding, partial last folds, every precision of a bit-serial PE. Each config is built once
(unoptimized C++: ``quick_build``) and runs all its shapes in one simulation; every output row's
value (golden) and cycle is checked, and each GEMM's measured last-row cycle must equal both
``SystolicConfig.cycles`` and the cost model's ``gemm_cycles``.

Verilator build time (20-60 s per config on two cores) sets the sizes: 8 x 8 for every kind (a kind
added to the registry runs at 8 x 8 with its ``cycle_cases.PE_PARAMS`` or its defaults; the float
kinds of :data:`SMALL` at 4 x 4), and the kinds and dataflows of :data:`LARGE` also at 16 x 16 in the
slow layer (``--slow``). CI runs every kind weight-stationary and, output-stationary, the MAC at 8 x 8
and the bit-serial PE at 4 x 16; the other kinds' square os arrays run in the slow layer (every kind's
os formula is checked at 4 x 4 and 3 x 6 in ``tests/rtl/test_cycles_property_rtl.py``).
"""

from __future__ import annotations

import pytest
from cycle_cases import array_for, binding_shapes, cases, small_pe
from tools import need

from peforge.hw.pe import PE_KINDS
from peforge.sim.runners import run_cocotb
from peforge.sim.tools import missing_simulator

BIG_K = 2001
LARGE = {("mac", "ws"), ("mac", "os"), ("bitserial", "ws")}  # also at 16 x 16, in the slow layer
NON_SQUARE = {"bitserial"}  # also os at 4 x 16: C - 1 binding with a beat of several cycles
SMALL = {"fpmac"}  # at 4 x 4: a float cell is ~10x a narrow integer one (build and simulation time)
OS_SQUARE_IN_CI = {"mac"}  # the other kinds' square os arrays in the slow layer (their os: 4 x 16 or RTL sim)


def _arrays(kind: str) -> list[tuple[str, int, int, bool]]:
    """``(dataflow, rows, cols, slow)`` of the arrays ``kind`` runs at."""
    side = 4 if kind in SMALL else 8
    square = [(df, side, side, df == "os" and kind not in OS_SQUARE_IN_CI) for df in ("ws", "os")]
    large = [(df, 16, 16, True) for df in ("ws", "os") if (kind, df) in LARGE]
    return square + large + ([("os", 4, 16, False)] if kind in NON_SQUARE else [])


CONFIGS = [pytest.param(kind, df, r, c, id=f"{kind}-{df}-{r}x{c}", marks=[pytest.mark.slow] if slow else [])
           for kind in PE_KINDS for df, r, c, slow in _arrays(kind)]


@pytest.mark.parametrize("kind, dataflow, rows, cols", CONFIGS)
def test_formula_equals_verilated_rtl(kind, dataflow, rows, cols, tmp_path):
    need(missing_simulator("verilator"))
    shapes = binding_shapes(rows, cols, dataflow, small_pe(kind).lanes, big_k=BIG_K)
    config = array_for(kind, dataflow, rows, cols, shapes)
    report = run_cocotb(config, "verilator", tmp_path, seed=5, shapes=cases(config, shapes), quick_build=True)
    assert not report.failures, "\n".join(report.failures[:8])
    assert report.cases == len(shapes)
    assert report.cycles_checked == report.ops > 0

"""The array's cycle formula against the Amaranth-simulated RTL, on shapes where every term binds.

For every PE kind of the registry and both dataflows, a 4 x 4 and a 3 x 6 array (C - 1 > R:
the output-stationary period's C - 1 term binds; the float MAC's 4 x 4 in the slow layer) run the GEMMs of
:func:`cycle_cases.binding_shapes` (K up to 301); every output row's value and cycle is checked,
and the measured cycle of each GEMM's last row must equal both ``SystolicConfig.cycles`` and the
cost model's ``gemm_cycles``. The Verilator test ``tests/cocotb/test_cycles_property.py`` does
the same on 8 x 8, 16 x 16 and 4 x 16 arrays with K above 2000.
"""

from __future__ import annotations

import pytest
from cycle_cases import array_for, binding_shapes, cases, small_pe

from peforge.hw.pe import PE_KINDS
from peforge.sim.runners import simulate_with
from peforge.sim.testbench.systolic import run_shapes

ARRAYS = [(4, 4), (3, 6)]
SLOW = {("fpmac", 4, 4)}  # a float cell simulates ~10x slower: its 3 x 6 (every term) runs in CI, 4 x 4 in --slow
CONFIGS = [pytest.param(kind, df, r, c, id=f"{kind}-{df}-{r}x{c}",
                        marks=[pytest.mark.slow] if (kind, r, c) in SLOW else [])
           for kind in PE_KINDS for df in ("ws", "os") for r, c in ARRAYS]


@pytest.mark.parametrize("kind, dataflow, rows, cols", CONFIGS)
def test_formula_equals_rtl_where_every_term_binds(kind, dataflow, rows, cols):
    shapes = binding_shapes(rows, cols, dataflow, small_pe(kind).lanes, big_k=301)
    config = array_for(kind, dataflow, rows, cols, shapes)
    specs = cases(config, shapes)
    report = simulate_with(config, lambda bench: run_shapes(bench, config, 7, specs))
    assert not report.failures, "\n".join(report.failures[:8])
    assert report.cases == len(shapes)
    assert report.cycles_checked == report.ops > 0

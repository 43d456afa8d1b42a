"""PimBank and PimChannel exported to Verilog, same testbench under cocotb on Verilator and Icarus."""

import pytest

from peforge.hw.pim import PimBankConfig, PimChannelConfig
from peforge.sim.runners import run_cocotb
from peforge.sim.tools import missing_simulator

CONFIGS = [
    PimBankConfig(rows=16, cols=16, lanes=8, word_bits=16, t_rcd=3, t_rp=3, t_ras=7, t_ccd=2, dual_row_buffer=True),
    PimChannelConfig(banks=2, rows=8, cols=16, lanes=8, word_bits=16, t_rcd=3, t_rp=3, t_ras=7, t_ccd=2),
]


@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
@pytest.mark.parametrize("config", CONFIGS, ids=repr)
def test_exported_pim_passes_testbench(config, simulator, tmp_path):
    why = missing_simulator(simulator)
    if why:
        pytest.skip(why)
    report = run_cocotb(config, simulator, tmp_path, seed=3)
    assert report.passed, report.failures[:5]
    assert report.simulator == simulator
    assert report.cycles_checked >= 12 and report.ops > 0

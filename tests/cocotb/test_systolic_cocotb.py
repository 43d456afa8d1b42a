"""SystolicArray's exported Verilog under cocotb on Verilator and Icarus, one small array per
dataflow, same testbench as in Amaranth (golden GEMM, exact cycles per output row)."""

import pytest

from peforge.hw.pe.bitserial import BitSerialConfig
from peforge.hw.pe.mixed import MixedConfig
from peforge.hw.systolic import SystolicConfig
from peforge.sim.runners import run_cocotb
from peforge.sim.tools import missing_simulator

CONFIGS = [
    SystolicConfig(rows=2, cols=3, pe="mixed", dataflow="ws", max_m=8, max_k=32, max_n=16,
                   pe_config=MixedConfig(lanes=2, group=8)),
    SystolicConfig(rows=3, cols=2, pe="bitserial", dataflow="os", max_m=8, max_k=32, max_n=16,
                   pe_config=BitSerialConfig(lanes=2, k=2, max_w_bits=4)),
]


@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.dataflow}-{c.pe}")
def test_exported_systolic_passes_testbench(config, simulator, tmp_path):
    why = missing_simulator(simulator)
    if why:
        pytest.skip(why)
    report = run_cocotb(config, simulator, tmp_path, seed=3)
    assert report.passed, report.failures[:5]
    assert report.simulator == simulator
    assert report.cycles_checked == report.ops > 0

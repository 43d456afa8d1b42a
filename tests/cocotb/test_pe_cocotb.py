"""Every PE's exported Verilog under cocotb on Verilator and Icarus, same testbench as in Amaranth."""

import pytest

from peforge.hw.pe.bitserial import BitSerialConfig
from peforge.hw.pe.mac import MacConfig
from peforge.hw.pe.mixed import MixedConfig
from peforge.sim.runners import run_cocotb
from peforge.sim.tools import missing_simulator

CONFIGS = [
    MacConfig(a_bits=8, w_bits=8, max_accumulations=255, output_register=True),
    BitSerialConfig(lanes=8, k=2, rescale=True, lut_entries=16, max_shift=3),
    MixedConfig(lanes=8, group=32, w_bits=4),
]


@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
@pytest.mark.parametrize("config", CONFIGS, ids=repr)
def test_exported_pe_passes_testbench(config, simulator, tmp_path):
    why = missing_simulator(simulator)
    if why:
        pytest.skip(why)
    report = run_cocotb(config, simulator, tmp_path, seed=3)
    assert report.passed, report.failures[:5]
    assert report.simulator == simulator
    assert report.cycles_checked == report.ops > 0

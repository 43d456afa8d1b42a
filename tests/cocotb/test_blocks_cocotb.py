"""Every block's exported Verilog under cocotb on Verilator and Icarus: the same testbench as in
the Amaranth simulator (golden model, corner cases, exact cycle counts)."""

import pytest

from peforge.hw.pe.bitserial import BitSerialConfig
from peforge.hw.pe.fpbitserial import FpBitSerialConfig
from peforge.hw.pe.fpmixed import FpMixedConfig
from peforge.hw.pe.fpmac import FpMacConfig
from peforge.hw.pe.mac import MacConfig
from peforge.hw.pe.mixed import MixedConfig
from peforge.hw.pim import PimBankConfig, PimChannelConfig
from peforge.hw.systolic import SystolicConfig
from peforge.sim.runners import run_cocotb
from peforge.sim.tools import missing_simulator
from tools import need

CONFIGS = {
    "mac": MacConfig(a_bits=8, w_bits=8, max_accumulations=255, output_register=True),
    "bitserial": BitSerialConfig(lanes=8, k=2, rescale=True, lut_entries=16, max_shift=3),
    "mixed": MixedConfig(lanes=8, group=32, w_bits=4),
    "pim-bank": PimBankConfig(rows=16, cols=16, lanes=8, word_bits=16, t_rcd=3, t_rp=3, t_ras=7, t_ccd=2,
                              dual_row_buffer=True),
    "pim-channel": PimChannelConfig(banks=2, rows=8, cols=16, lanes=8, word_bits=16, t_rcd=3, t_rp=3, t_ras=7,
                                    t_ccd=2),
    "fpmac": FpMacConfig(fmt="bf16", lanes=4, output_register=True),
    "fpmac-e4m3-approx": FpMacConfig(fmt="e4m3", acc="bf16", subnormals=False, approx_norm=True),
    "systolic-ws-fpmac": SystolicConfig(rows=2, cols=2, pe="fpmac", dataflow="ws", max_m=6, max_k=16, max_n=6,
                                        pe_config=FpMacConfig(fmt="e5m2", acc="fp16", lanes=2)),
    "systolic-ws-mixed": SystolicConfig(rows=2, cols=3, pe="mixed", dataflow="ws", max_m=8, max_k=32, max_n=16,
                                        pe_config=MixedConfig(lanes=2, group=8)),
    "systolic-os-bitserial": SystolicConfig(rows=3, cols=2, pe="bitserial", dataflow="os", max_m=8, max_k=32,
                                            max_n=16, pe_config=BitSerialConfig(lanes=2, k=2, max_w_bits=4)),
    "fpbitserial": FpBitSerialConfig(lanes=4, k=2, rescale=True, lut_entries=16, max_shift=3, align_bits=9),
    "fpmixed": FpMixedConfig(lanes=4, group=16, w_bits=4),
    "systolic-ws-fpbitserial": SystolicConfig(rows=2, cols=3, pe="fpbitserial", dataflow="ws", max_m=8, max_k=32,
                                              max_n=16, pe_config=FpBitSerialConfig(lanes=2, k=2, max_w_bits=4,
                                                                                     align_bits=7)),
    "systolic-os-fpmixed": SystolicConfig(rows=3, cols=2, pe="fpmixed", dataflow="os", max_m=8, max_k=32, max_n=16,
                                          pe_config=FpMixedConfig(lanes=2, group=8, align_bits=7, fp32_out=False)),
}


# Arrays that Verilator runs in tests/cocotb/test_cycles_property.py (every kind, both dataflows): Icarus only here.
VERILATED_ELSEWHERE = {"systolic-ws-fpbitserial", "systolic-os-fpmixed"}
RUNS = [(name, simulator) for name in CONFIGS for simulator in ("verilator", "icarus")
        if not (simulator == "verilator" and name in VERILATED_ELSEWHERE)]


@pytest.mark.parametrize("name, simulator", RUNS, ids=[f"{name}-{simulator}" for name, simulator in RUNS])
def test_exported_block_passes_testbench(name, simulator, tmp_path):
    need(missing_simulator(simulator))
    report = run_cocotb(CONFIGS[name], simulator, tmp_path, seed=3, quick_build=True)  # -O0: builds fast
    assert report.passed, report.failures[:5]
    assert report.simulator == simulator
    assert report.ops > 0 and report.cycles_checked > 0
    if not name.startswith("pim"):  # PIM reports GEMVs as cases and MAC commands as ops
        assert report.cycles_checked == report.ops
    else:
        assert report.cycles_checked >= 12

"""Every PE against its golden model in the Amaranth simulator, across its parameter corners."""

import pytest

from peforge.hw.pe import PE_KINDS
from peforge.hw.pe.bitserial import BitSerialConfig
from peforge.hw.pe.fpbitserial import FpBitSerialConfig
from peforge.hw.pe.fpmixed import FpMixedConfig
from peforge.hw.pe.mac import MacConfig
from peforge.hw.pe.mixed import MixedConfig
from peforge.sim.runners import simulate

CONFIGS = [kind.config() for kind in PE_KINDS.values()] + [  # every registered kind's defaults first
    MacConfig(a_bits=2, w_bits=2, max_accumulations=7),
    MacConfig(a_bits=16, w_bits=16, output_register=True),
    MacConfig(a_bits=4, w_bits=12, max_accumulations=1),
    MacConfig(a_bits=8, w_bits=3, max_accumulations=100, output_register=True),
    BitSerialConfig(lanes=1, k=1, a_bits=2, max_w_bits=2, max_accumulations=3),
    BitSerialConfig(lanes=16, k=1, a_bits=16),
    BitSerialConfig(lanes=5, k=4, max_w_bits=7, a_bits=4, max_accumulations=1),
    BitSerialConfig(lanes=4, k=2, rescale=True, max_shift=15),
    BitSerialConfig(lanes=3, k=1, rescale=True, max_shift=0, max_w_bits=3),
    BitSerialConfig(lanes=4, k=2, lut_entries=16, max_w_bits=6),
    BitSerialConfig(lanes=2, k=4, lut_entries=8, rescale=True, max_w_bits=8, max_shift=5),
    BitSerialConfig(lanes=64, k=2, max_w_bits=4),
    MixedConfig(lanes=4, group=8, w_bits=2),
    MixedConfig(lanes=4, group=4, w_bits=3, zero_point=False),
    MixedConfig(lanes=16, group=16, zero_point=False, scale_bits=24, scale_frac_bits=24),
    MixedConfig(lanes=1, group=1, max_groups=3, scale_bits=2, scale_frac_bits=0),
    MixedConfig(lanes=8, group=64, w_bits=3, max_groups=1),
    MixedConfig(lanes=64, group=128),
    FpBitSerialConfig(lanes=3, k=1, align_bits=5, max_w_bits=4, max_accumulations=3),
    FpBitSerialConfig(lanes=4, k=2, rescale=True, max_shift=15, align_bits=16),
    FpBitSerialConfig(lanes=2, k=4, lut_entries=8, rescale=True, max_shift=5, fp32_out=False),
    FpBitSerialConfig(lanes=4, a_float="bf16", align_bits=9),
    FpBitSerialConfig(lanes=5, a_float="bf16", align_bits=4, rescale=True, max_w_bits=5),
    FpMixedConfig(lanes=4, group=8, w_bits=2, align_bits=5),
    FpMixedConfig(lanes=4, group=4, w_bits=3, zero_point=False, align_bits=16),
    FpMixedConfig(lanes=1, group=1, max_groups=3, scale_bits=2, scale_frac_bits=0, fp32_out=False),
    FpMixedConfig(lanes=4, group=8, a_float="bf16", align_bits=9),
    FpMixedConfig(lanes=3, group=6, zero_point=False, a_float="bf16", align_bits=4, scale_bits=24, scale_frac_bits=24),
]


@pytest.mark.parametrize("config", CONFIGS, ids=repr)
@pytest.mark.parametrize("seed", [0, 1])
def test_pe_matches_golden_and_cycles(config, seed):
    report = simulate(config, seed)
    assert report.passed, report.failures[:5]
    assert report.cycles_checked == report.ops > 0

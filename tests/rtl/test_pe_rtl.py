"""Every PE against its golden model in the Amaranth simulator, across its parameter corners."""

import pytest

from peforge.hw.pe.mac import MacConfig
from peforge.sim.runners import simulate

CONFIGS = [
    MacConfig(),
    MacConfig(a_bits=2, w_bits=2, max_accumulations=7),
    MacConfig(a_bits=16, w_bits=16, output_register=True),
    MacConfig(a_bits=4, w_bits=12, max_accumulations=1),
    MacConfig(a_bits=8, w_bits=3, max_accumulations=100, output_register=True),
]


@pytest.mark.parametrize("config", CONFIGS, ids=repr)
@pytest.mark.parametrize("seed", [0, 1])
def test_pe_matches_golden_and_cycles(config, seed):
    report = simulate(config, seed)
    assert report.passed, report.failures[:5]
    assert report.cycles_checked == report.ops > 0
